"""What every float reference of the family shares: the input convention, the forward skeleton, LIF bookkeeping.

Each member (``spikformer.py``, ``spikingformer.py``, ``sdt.py``) gives ``patch_embed`` (the tokenizer), ``block``
(the encoder blocks) and ``logits`` (pooling and head), with module names as in its original code so that original
state_dicts load strictly and spike counts are reported per original LIF name; one without a tokenizer
(``metaspikeformer.py``) gives its own ``parts``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import DataError
from .config import SpikformerConfig
from .lif import MultiStepLIF


def synapse_bn(synapse: nn.Module, bn: nn.Module, x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """Synapse then BatchNorm on ``x [T, B, ...]`` with T folded into the batch, as the original codes do."""
    T, B = x.shape[:2]
    y = synapse(x.flatten(0, 1))
    if channels_last:  # spikformer cifar10: Linear on [TB, N, C]; BatchNorm1d wants channels in dim 1
        y = bn(y.transpose(-1, -2)).transpose(-1, -2)
    else:
        y = bn(y)
    return y.reshape(T, B, *y.shape[1:]).contiguous()


def per_frame(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 2-D module (max-pool) on ``[T, B, C, H, W]`` with T folded into the batch."""
    y = module(x.flatten(0, 1))
    return y.reshape(*x.shape[:2], *y.shape[1:])


class FamilyModel(nn.Module):
    config: SpikformerConfig

    def time_major_input(self, x: torch.Tensor) -> torch.Tensor:
        """Check the input shape and return the ``[T, B, C, H, W]`` sequence the network runs on."""
        cfg = self.config
        chw = (cfg.in_channels, cfg.img_size, cfg.img_size)
        if cfg.variant == "cifar10dvs":  # event frames [B, T, C, H, W]; T is the number of frames
            if x.ndim != 5 or tuple(x.shape[2:]) != chw:
                raise DataError(f"cifar10dvs model expects event frames [B, T, {chw[0]}, {chw[1]}, {chw[2]}], "
                                f"got {list(x.shape)}")
            return x.permute(1, 0, 2, 3, 4)
        if x.ndim != 4 or tuple(x.shape[1:]) != chw:
            raise DataError(f"{cfg.variant} model expects images [B, {chw[0]}, {chw[1]}, {chw[2]}], got "
                            f"{list(x.shape)}")
        return x.unsqueeze(0).repeat(cfg.T, 1, 1, 1, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output ``[T, B, ...]`` -> logits ``[B, classes]``."""
        raise NotImplementedError

    def parts(self) -> list[nn.Module]:
        """The modules forward runs one after the other on the time-major sequence, before ``logits`` (the ONNX
        export traces each on its own)."""
        return [self.patch_embed, *self.block]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.time_major_input(x)
        for part in self.parts():
            x = part(x)
        return self.logits(x)

    @staticmethod
    def is_unused_parameter(key: str) -> bool:
        """Entries the original keeps in its state_dict but forward() never reads (loaded only if they fit)."""
        return False


def lif_modules(model: nn.Module) -> dict[str, MultiStepLIF]:
    """LIF modules in registration order, by original module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MultiStepLIF)}


@torch.no_grad()
def spike_counts(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` and return ``{original LIF module name: int64 [T, B] spike counts}`` in forward order
    (LIFs that forward never calls are absent, as in the original codes' hooks)."""
    counts: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in lif_modules(model).items():
        def hook(_module, _inputs, output, name=name):
            counts[name] = output.flatten(2).sum(2).round().to(torch.int64)
        handles.append(module.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return counts
