"""One error hierarchy, every class of it here. Each error carries the one-line message a user sees; the CLI prints it
and exits non-zero."""
import pickle
import signal


class DeployError(Exception):
    """Base class: anything the user can fix (bad file, bad option, bad data)."""

    exit_code = 2


class CheckpointError(DeployError):
    """A checkpoint cannot be read, is unsafe, or does not describe a Spikformer we can build."""


class ConfigError(DeployError):
    """A model option is missing, contradictory or out of range."""


class DataError(DeployError):
    """Input data has the wrong shape, type or values."""


class GraphError(DeployError):
    """The deploy graph is malformed (a pass or a file broke it), or of the wrong dialect for its consumer."""


class UnsupportedOpError(GraphError):
    """A backend or analysis has no mapping for an op of the graph."""

    def __init__(self, consumer: str, op_type: str, node: str, reason: str = ""):
        super().__init__(f"{consumer} cannot handle {op_type} node {node}" + (f": {reason}" if reason else ""))
        self.consumer, self.op_type, self.node = consumer, op_type, node


class LavaRunError(DeployError):
    """A Lava run ended without its result: a child process died, or the run outlived its limit."""


class ArtifactError(DeployError):
    """An artifact directory cannot be written, or does not match its manifest."""


class ProfileError(DeployError):
    """A hardware profile is missing, malformed or lacks a constant."""


class GpuMeasurementUnavailable(DeployError):
    """The measured GPU reference cannot run here (no CUDA, no NVML, unsupported GPU)."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list (raised inside the unpickler, reported as CheckpointError)."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like KeyboardInterrupt (not an error of the input), cleaning up on the way."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
