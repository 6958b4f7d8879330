"""One error hierarchy. Each error carries the one-line message a user sees; the CLI prints it and exits non-zero."""


class DeployError(Exception):
    """Base class: anything the user can fix (bad file, bad option, bad data)."""

    exit_code = 2


class CheckpointError(DeployError):
    """A checkpoint cannot be read, is unsafe, or does not describe a Spikformer we can build."""


class ConfigError(DeployError):
    """A model option is missing, contradictory or out of range."""


class DataError(DeployError):
    """Input data has the wrong shape, type or values."""
