"""Float reference Spikformer (cifar10 / imagenet / cifar10dvs variants of the original code) and its loader."""
from .checkpoint import load_checkpoint, parameter_count, safe_torch_load, save_checkpoint
from .config import VARIANTS, SpikformerConfig
from .lif import MultiStepLIF
from .spikformer import Spikformer, lif_modules, spike_counts

__all__ = ["load_checkpoint", "save_checkpoint", "safe_torch_load", "parameter_count", "SpikformerConfig",
           "VARIANTS", "MultiStepLIF", "Spikformer", "lif_modules", "spike_counts"]
