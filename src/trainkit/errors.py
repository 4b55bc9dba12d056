"""Errors a user can fix: a wrong value, a missing file. `train.py` prints them as one line."""


class TrainkitError(Exception):
    """A problem with the user's input, described in one sentence that says what to do."""


class ConfigError(TrainkitError):
    """An impossible or inconsistent configuration value."""


class DataError(TrainkitError):
    """Missing, corrupt or unusable data."""
