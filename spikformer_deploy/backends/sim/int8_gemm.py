"""Exact integer synapses on the CPU through oneDNN's int8 kernels (uint8 inputs x int8 weights, int32 accumulation).

Integer synapses multiply small non-negative integers (spikes, residual spike sums, 8-bit pixels) by 8-bit weight
mantissas. oneDNN computes exactly that with VNNI instructions, about 2.5-3.5x faster than the fp32 GEMM on this kind
of CPU, and its float32 output is exact while |sum| < 2**24 (the simulator's own float32 criterion). torch 2.3 has no
CPU ``_int_mm``; ``torch.ops.onednn`` (the kernels behind inductor's x86 quantization) is the exact path it offers.

``available()`` checks the kernels once per process against float arithmetic on worst-case values: a CPU without
VNNI may saturate the int16 pair sums of 8-bit products, and such a CPU keeps the float path.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from ...ir import Graph
from ...ir.ops import Add, Flatten, Input, OrPool, Unflatten, Vectorize

INT8 = (-128, 127)
UINT8_MAX = 255


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether oneDNN's int8 kernels exist here and agree with float arithmetic on extreme 8-bit values."""
    if not hasattr(torch.ops, "onednn") or not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, UINT8_MAX + 1, (8, 64, 5, 5), dtype=torch.uint8, generator=gen)
        x[0] = UINT8_MAX  # largest pair sums: 255 * -128 twice overflow int16, which a CPU without VNNI saturates
        w = torch.randint(INT8[0], INT8[1] + 1, (16, 64, 3, 3), dtype=torch.int8, generator=gen)
        w[0], w[1] = INT8[0], INT8[1]
        conv = Conv(w.numpy(), (1, 1), (1, 1))
        expected = torch.nn.functional.conv2d(x.double(), w.double(), None, 1, 1)
        if not torch.equal(conv(x.float()).double(), expected):
            return False
        tokens = x.flatten(2).transpose(1, 2).reshape(-1, 64)
        dense = Linear(w[:, :, 0, 0].numpy())
        return torch.equal(dense(tokens.float()).double(), tokens.double() @ w[:, :, 0, 0].double().T)
    except (RuntimeError, AttributeError):  # a torch built without these kernels
        return False


def unsigned_bytes(graph: Graph, name: str, bounds: dict[str, float]) -> bool:
    """Whether node ``name`` provably outputs integers in 0..255: spikes, unsigned inputs of at most 8 bits, and
    sums, pools and reshapes of those within the bound."""
    node = graph.nodes[name]
    op = node.op
    if op.spiking:
        return True
    if isinstance(op, Input):
        return not op.signed and (op.bits or 8) <= 8
    if isinstance(op, (Add, Flatten, Unflatten, Vectorize, OrPool)):
        return bounds[name] <= UINT8_MAX and all(unsigned_bytes(graph, i, bounds) for i in node.inputs)
    return False


def fits(weight: np.ndarray) -> bool:
    return weight.size == 0 or (weight.min() >= INT8[0] and weight.max() <= INT8[1])


class Conv:
    """``conv2d(x, weight) * scale`` for float tensors holding integers 0..255 (``[B, C, H, W]``); float32 out
    (``scale``: a power of two keeps it exact)."""

    def __init__(self, weight: np.ndarray, stride: tuple[int, int], padding: tuple[int, int], scale: float = 1.0):
        w = torch.tensor(weight.astype(np.int8))
        self.out_channels = w.shape[0]
        self.scales = torch.full((self.out_channels,), scale)
        self.zero_points = torch.zeros(self.out_channels, dtype=torch.int32)
        self.stride, self.padding = list(stride), list(padding)
        self.packed = torch.ops.onednn.qconv_prepack(w, self.scales, 1.0, 0, self.stride, self.padding, [1, 1], 1,
                                                      None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # oneDNN's int8 convolution works on channels-last data; the output stays channels-last
        xq = x.to(torch.uint8, memory_format=torch.channels_last)
        return torch.ops.onednn.qconv2d_pointwise(xq, 1.0, 0, self.packed, self.scales, self.zero_points, None,
                                                  self.stride, self.padding, [1, 1], 1, 1.0, 0, torch.float32,
                                                  "none", [], "")


class Linear:
    """``(x @ weight.T) * scale`` for float tensors holding integers 0..255 (``[..., C_in]``); float32 out."""

    def __init__(self, weight: np.ndarray, scale: float = 1.0):
        w = torch.tensor(weight.astype(np.int8))
        self.out_features = w.shape[0]
        self.scales = torch.full((self.out_features,), scale)
        self.zero_points = torch.zeros(self.out_features, dtype=torch.int32)
        self.packed = torch.ops.onednn.qlinear_prepack(w, None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xq = x.reshape(-1, x.shape[-1]).to(torch.uint8)
        y = torch.ops.onednn.qlinear_pointwise(xq, 1.0, 0, self.packed, self.scales, self.zero_points, None, 1.0, 0,
                                               torch.float32, "none", [], "")
        return y.reshape(*x.shape[:-1], self.out_features)
