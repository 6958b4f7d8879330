"""Float references of the Spikformer family (Spikformer's three variants, Spikingformer, Spike-driven Transformer v1,
Meta-SpikeFormer) and their checkpoint loader."""
from .base import FamilyModel, lif_modules, spike_counts
from .checkpoint import build_model, load_checkpoint, parameter_count, safe_torch_load, save_checkpoint
from .config import MEMBERS, VARIANTS, SpikformerConfig
from .lif import MultiStepLIF
from .metaspikeformer import MetaSpikeFormer
from .sdt import SpikeDrivenTransformer
from .spikformer import Spikformer
from .spikingformer import Spikingformer

__all__ = ["load_checkpoint", "save_checkpoint", "safe_torch_load", "parameter_count", "build_model",
           "SpikformerConfig", "VARIANTS", "MEMBERS", "MultiStepLIF", "FamilyModel", "Spikformer", "Spikingformer",
           "SpikeDrivenTransformer", "MetaSpikeFormer", "lif_modules", "spike_counts"]
