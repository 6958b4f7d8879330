"""Multi-step LIF neuron identical to spikingjelly 0.0.0.0.12 ``MultiStepLIFNode(tau=2.0, detach_reset=True)``.

Per step (decay_input=True, v_reset=0): ``h = v + (x - v) / tau``; spike ``s = (h - v_th >= 0)`` (ties fire);
hard reset ``v = h * (1 - s)``. ``v`` starts at 0 for every forward call, so no ``reset_net`` is needed.
The operations are written in the same order as spikingjelly's so that float results match bit for bit.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import LIF_TAU, LIF_THRESHOLD

# spikingjelly's default surrogate for MultiStepLIFNode: Sigmoid with alpha = 4 (used only when training).
SURROGATE_ALPHA = 4.0


class _HeavisideSigmoidSurrogate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(SURROGATE_ALPHA * x)
        return grad_output * SURROGATE_ALPHA * sig * (1.0 - sig)


class MultiStepLIF(nn.Module):
    """Input ``[T, ...]`` membrane drive, output ``[T, ...]`` binary spikes (same dtype)."""

    def __init__(self, v_threshold: float = LIF_THRESHOLD, tau: float = LIF_TAU):
        super().__init__()
        self.v_threshold = v_threshold
        self.tau = tau

    def extra_repr(self) -> str:
        return f"tau={self.tau}, v_threshold={self.v_threshold}"

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x_seq[0])
        spikes = []
        for x in x_seq:
            h = v + (x - v) / self.tau
            s = _HeavisideSigmoidSurrogate.apply(h - self.v_threshold)
            # detach_reset=True: the reset does not carry gradient.
            v = h * (1.0 - s.detach())
            spikes.append(s)
        return torch.stack(spikes)
