"""trainkit's Hydra sweepers: `grid` (the default, every combination; grid_sweeper.py) and
`optuna` for current Optuna (>= 4; optuna_sweeper.py), both resumable in their sweep folder.

The official hydra-optuna-sweeper 1.3.0 pins optuna<3; the Optuna sweeper keeps its config shape
(sampler, direction, study_name, storage, n_trials, n_jobs, params) on today's Optuna, and adds
journal storage with several workers, repeats over seeds and pruning. See _sweep.py for the
ask/tell loop, _jobs.py for resuming, _storage.py for workers and pruning.
"""
