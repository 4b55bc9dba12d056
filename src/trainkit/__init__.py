"""trainkit: a PyTorch Lightning + Hydra template that makes epochs, batches and iterations visible.

Importing the package is cheap on purpose (no torch, no Lightning): `python train.py --help` must be
fast. The heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
