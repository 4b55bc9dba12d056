"""trainkit's Hydra sweeper for current Optuna (>= 4), selected with `hydra/sweeper=optuna`.

The official hydra-optuna-sweeper 1.3.0 pins optuna<3; this small plugin keeps the same config
shape (sampler, direction, study_name, storage, n_trials, n_jobs, params) on today's Optuna.
See optuna_sweeper.py for the config and _sweep.py for the ask/tell loop.
"""
