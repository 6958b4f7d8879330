"""Deploy-IR operations: one dataclass per concept (as in NIR), each knowing its output shape.

Tensors flow channel-first, per sample and per time step: images ``[C, H, W]``, token maps ``[C, N]``. Arrays are
float before ``quantize`` and integer after it. Semantics of every op are defined by the simulator's kernels
(``backends/sim``); the docstrings state them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# Loihi 2 formats (lava-nc 0.10 lava/proc/lif/models.py, lava/proc/dense/models.py; DESIGN.md §2).
STATE_BITS = 24  # u and v
VTH_BITS = 17  # vth mantissa; effective threshold = vth << 6
BIAS_MANT_BITS = 13
BIAS_EXP_MAX = 7
ACT_SHIFT = 6  # a_in << 6 into u; vth << 6
DECAY_UNITY = 4096
WEIGHT_EXP_RANGE = (-8, 7)


class Op:
    """Base of all ops. Subclasses are dataclasses; ``arrays`` lists their numpy fields."""

    def out_shape(self, *in_shapes: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def attributes(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)}

    @property
    def type(self) -> str:
        return type(self).__name__


def _is_int(a: np.ndarray | None) -> bool:
    return a is not None and np.issubdtype(a.dtype, np.integer)


@dataclass
class Input(Op):
    """Model input. ``image``: an analog image repeated each step (quantized to ``bits``-bit graded values as
    ``round(x * scale)``); ``events``: event-count frames, one per step (integers already)."""

    shape: tuple[int, ...]
    kind: str  # "image" | "events"
    scale: float | None = None  # set by quantize
    bits: int | None = None
    signed: bool = False

    def out_shape(self):
        return tuple(self.shape)


@dataclass
class Conv2d(Op):
    """2-D convolution synapse, ``torch.conv2d`` orientation. Quantized: ``a = (w * s) << weight_exp``
    (arithmetic shift right when negative); the bias then lives in the neuron."""

    weight: np.ndarray  # [C_out, C_in, kh, kw]
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 1
    weight_exp: int = 0
    weight_bits: int | None = None

    def out_shape(self, s):
        c, h, w = s
        k = self.weight.shape[-1]
        assert_channels(self, c, self.weight.shape[1])
        return (self.weight.shape[0], (h + 2 * self.padding - k) // self.stride + 1,
                (w + 2 * self.padding - k) // self.stride + 1)

    @property
    def quantized(self) -> bool:
        return _is_int(self.weight)


@dataclass
class Dense(Op):
    """Token-wise linear synapse (1x1 conv): ``y[:, n] = W x[:, n] (+ b)``. Quantized like ``Conv2d``."""

    weight: np.ndarray  # [C_out, C_in]
    bias: np.ndarray | None = None
    weight_exp: int = 0
    weight_bits: int | None = None

    def out_shape(self, s):
        assert_channels(self, s[0], self.weight.shape[1])
        return (self.weight.shape[0], *s[1:])

    @property
    def quantized(self) -> bool:
        return _is_int(self.weight)


@dataclass
class BatchNorm(Op):
    """Eval-mode batch norm as a per-channel affine map ``y = x * scale + shift`` (removed by fold_batchnorm)."""

    scale: np.ndarray
    shift: np.ndarray

    def out_shape(self, s):
        return tuple(s)


@dataclass
class LIF(Op):
    """spikingjelly LIF (tau, v_threshold, hard reset to 0, ties fire) written on the scale ``V = tau * h``:
    ``V_t = V_{t-1} * (1 - s_{t-1}) / tau + x_t``, spike iff ``V_t >= tau * v_threshold``. With tau = 2 this is
    Loihi's LIF with du = 4095 and dv = 2048."""

    v_threshold: float
    tau: float = 2.0

    def out_shape(self, s):
        return tuple(s)

    @property
    def threshold(self) -> float:
        """Threshold on the V scale."""
        return self.tau * self.v_threshold


@dataclass
class LoihiLIF(Op):
    """Loihi 2 fixed-point LIF, exactly lava's ``PyLifModelBitAcc``: ``u = wrap24(u*(4096-(du+1)) >> 12 + a << 6)``,
    ``v = clip24(v*(4096-dv) >> 12 + u + bias_mant << bias_exp)`` (shifts toward zero), spike iff ``v > vth << 6``,
    then ``v = 0``. ``scale`` is the factor from the float V scale to integer v (for reports)."""

    vth: int
    bias_mant: np.ndarray  # per channel
    bias_exp: int = 0
    du: int = 4095
    dv: int = 2048
    scale: float = 1.0

    def out_shape(self, s):
        return tuple(s)

    @property
    def effective_bias(self) -> np.ndarray:
        return self.bias_mant.astype(np.int64) << self.bias_exp


@dataclass
class OrPool(Op):
    """MaxPool2d on binary spikes, i.e. an OR over each window (padding never wins: spikes are >= 0)."""

    kernel: int = 3
    stride: int = 2
    padding: int = 1

    def out_shape(self, s):
        c, h, w = s
        return (c, (h + 2 * self.padding - self.kernel) // self.stride + 1,
                (w + 2 * self.padding - self.kernel) // self.stride + 1)


@dataclass
class Add(Op):
    """Residual sum of spike tensors: graded integer values (0 .. number of summed binary sources)."""

    def out_shape(self, *shapes):
        if len(set(map(tuple, shapes))) != 1:
            raise ValueError(f"Add of different shapes {shapes}")
        return tuple(shapes[0])


@dataclass
class Flatten(Op):
    """Image ``[C, H, W]`` to tokens ``[C, H*W]`` (row-major, as the original's ``flatten(-2)``)."""

    def out_shape(self, s):
        return (s[0], s[1] * s[2])


@dataclass
class SpikingAttention(Op):
    """Spiking self-attention core on binary q, k, v ``[C, N]`` split into heads of ``head_dim`` channels:
    ``M = Q Kᵀ V`` per head (integers: AND + popcount, then additions gated by spikes), output ``M * scale`` before
    ``rewrite_ssa`` and ``M << out_shift`` after it (the scale then sits in attn_lif's threshold).
    ``order``: ``"qk_v"`` computes (Q Kᵀ) V (~N²d), ``"q_kv"`` computes Q (Kᵀ V) (~N d²); same integers."""

    num_heads: int
    head_dim: int
    scale: float
    order: str
    out_shift: int = 0
    rewritten: bool = False

    def out_shape(self, q, k, v):
        if not q == k == v:
            raise ValueError(f"q, k, v shapes differ: {q}, {k}, {v}")
        return tuple(q)


@dataclass
class Head(Op):
    """Classifier: mean over tokens and time steps of the last residual stream, then ``W x + b``. Quantized: integer
    sums (no division; argmax is unchanged by 1/(N*T)), integer weights, ``bias`` pre-multiplied by N*T;
    ``scale`` maps integer logits back to float logits."""

    weight: np.ndarray  # [classes, C]
    bias: np.ndarray
    weight_bits: int | None = None
    scale: float | None = None

    def out_shape(self, s):
        assert_channels(self, s[0], self.weight.shape[1])
        return (self.weight.shape[0],)

    @property
    def quantized(self) -> bool:
        return _is_int(self.weight)


def assert_channels(op: Op, got: int, expected: int) -> None:
    if got != expected:
        raise ValueError(f"{op.type} expects {expected} input channels, got {got}")


OP_TYPES: dict[str, type[Op]] = {cls.__name__: cls for cls in (
    Input, Conv2d, Dense, BatchNorm, LIF, LoihiLIF, OrPool, Add, Flatten, SpikingAttention, Head)}

SYNAPSES = (Conv2d, Dense)
NEURONS = (LIF, LoihiLIF)
