"""spikformer-deploy: deploy a trained Spikformer to neuromorphic hardware (Loihi 2 via Lava, NIR, ONNX)."""
from .errors import CheckpointError, ConfigError, DataError, DeployError
from .model import SpikformerConfig, load_checkpoint, save_checkpoint, spike_counts

__version__ = "0.1.0"

__all__ = ["load_checkpoint", "save_checkpoint", "spike_counts", "SpikformerConfig", "DeployError",
           "CheckpointError", "ConfigError", "DataError", "__version__"]
