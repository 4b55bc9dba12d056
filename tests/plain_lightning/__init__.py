"""Lightning code as a user brings it, with no trainkit import: the DataModules and models that
tests/test_plain_lightning.py trains with trainkit (configs in conf/, found through
hydra.searchpath). The data are scikit-learn's digits, flattened to 64 numbers."""
