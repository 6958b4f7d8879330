"""Deploy-IR operations: one frozen dataclass per concept (as in NIR), each knowing its output shape and its traits.

Tensors flow channel-first, per sample and per time step: images ``[C, H, W]``, token maps ``[C, N]``. A graph is of
one dialect, ``float`` (before ``quantize``) or ``integer`` (after it); each op says which dialects admit it and which
of its arrays are integer there, and ``Graph.validate`` checks both, so no backend has to guess. Ops are immutable and
their arrays read-only: a pass builds new ops (``dataclasses.replace``) and cannot change its input graph. Semantics of
every op are defined by the simulator's kernels (``backends/sim``); the docstrings state them.

Adding an op: its class here (traits + ``out_shape``), then one entry in each backend's and analysis' ``OpTable``
(or an explicit "unsupported" reason there); ``tests/ir/test_op_tables.py`` checks that none is missing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

# Loihi 2 formats (lava-nc 0.10 lava/proc/lif/models.py, lava/proc/dense/models.py; DESIGN.md §2).
STATE_BITS = 24  # u and v
VTH_BITS = 17  # vth mantissa; effective threshold = vth << 6
BIAS_MANT_BITS = 13
BIAS_EXP_MAX = 7
ACT_SHIFT = 6  # a_in << 6 into u; vth << 6
DECAY_UNITY = 4096
WEIGHT_EXP_RANGE = (-8, 7)

FLOAT, INTEGER = "float", "integer"
DIALECTS = (FLOAT, INTEGER)
UNBOUNDED = float("inf")


class Op:
    """Base of all ops. Subclasses are frozen dataclasses; ``arrays`` lists their numpy fields.

    Traits (class attributes) tell every consumer what it needs without an ``isinstance`` chain:
    ``spiking``: the output is binary spikes; ``synapse``: fixed weighted connections (synaptic memory on chip);
    ``neuron_group``: occupies neurons (cores) on chip; ``delay``: time steps the op adds on Loihi (one per synapse
    hop: the pipeline depth of the graph is the sum along the longest path); ``embedded``: computed by the embedded
    x86 cores (no fixed synapses: AND, popcount, additions, comparisons), within the step its inputs arrive;
    ``dialects``: the graph dialects that admit the op; ``integer_arrays``: the arrays that hold integers in the
    integer dialect (floats in the float one).
    """

    spiking: ClassVar[bool] = False
    synapse: ClassVar[bool] = False
    neuron_group: ClassVar[bool] = False
    embedded: ClassVar[bool] = False
    delay: ClassVar[int] = 0
    dialects: ClassVar[tuple[str, ...]] = DIALECTS
    integer_arrays: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                view = value.view()
                view.flags.writeable = False
                object.__setattr__(self, f.name, view)
            elif isinstance(value, list):  # JSON gives lists where the op holds tuples
                object.__setattr__(self, f.name, tuple(value))

    def out_shape(self, *in_shapes: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def out_bound(self, *in_bounds: float) -> float:
        """Largest |value| of the output in the integer dialect, given the inputs' bounds."""
        return 1.0 if self.spiking else UNBOUNDED

    def dialect_error(self, dialect: str) -> str | None:
        """Why this op cannot stand in a graph of ``dialect`` (None: it can)."""
        if dialect not in self.dialects:
            return f"{self.type} has no place in the {dialect} dialect"
        for name in self.integer_arrays:
            a = getattr(self, name)
            if a is not None and np.issubdtype(a.dtype, np.integer) != (dialect == INTEGER):
                return f"{self.type}.{name} is {a.dtype} in the {dialect} dialect"
        return None

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def attributes(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)}

    @property
    def type(self) -> str:
        return type(self).__name__


op = dataclass(frozen=True, eq=False)  # ops compare by identity: their arrays have no single truth value


@op
class Input(Op):
    """Model input, injected by the host (its values reach the first synapse one step later). ``image``: an analog
    image repeated for ``steps`` time steps (integer dialect: ``bits``-bit graded values ``round(x * scale)``);
    ``events``: event-count frames, one per step (integers already; ``steps`` is the model's frame count)."""

    shape: tuple[int, ...]
    kind: str  # "image" | "events"
    steps: int  # time steps per inference (T)
    scale: float | None = None  # set by quantize
    bits: int | None = None
    signed: bool = False
    delay: ClassVar[int] = 1

    def out_shape(self):
        return tuple(self.shape)

    def out_bound(self):
        bits = self.bits or 8
        return float(2 ** (bits - 1) if self.signed else 2**bits - 1)

    def dialect_error(self, dialect):
        if dialect == INTEGER and self.bits is None:
            return "Input has no bit width in the integer dialect (quantize sets it)"
        return super().dialect_error(dialect)


@op
class Conv2d(Op):
    """2-D convolution synapse, ``torch.conv2d`` orientation. Integer: ``a = (w * s) << weight_exp`` (arithmetic
    shift right when negative); the bias then lives in the neuron. ``stride`` and ``padding`` are (h, w) pairs (an
    int means the same on both axes)."""

    weight: np.ndarray  # [C_out, C_in, kh, kw]
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (1, 1)
    weight_exp: int = 0
    weight_bits: int | None = None
    synapse: ClassVar[bool] = True
    delay: ClassVar[int] = 1
    integer_arrays: ClassVar[tuple[str, ...]] = ("weight",)

    def __post_init__(self):
        super().__post_init__()
        for name in ("stride", "padding"):
            value = getattr(self, name)
            object.__setattr__(self, name, (int(value), int(value)) if np.isscalar(value) else
                               tuple(int(v) for v in value))

    def out_shape(self, s):
        c, *hw = s
        assert_channels(self, c, self.weight.shape[1] * self.groups)
        return (self.weight.shape[0], *((n + 2 * p - k) // st + 1 for n, p, k, st in
                                        zip(hw, self.padding, self.weight.shape[-2:], self.stride)))

    @property
    def groups(self) -> int:
        """``torch.conv2d``'s groups: each output channel reads ``C_in / groups`` input channels."""
        return 1

    def dense_weight(self) -> np.ndarray:
        """``[C_out, C_in, kh, kw]``: the kernel as a dense (ungrouped) convolution's."""
        return self.weight


@op
class DepthwiseConv2d(Conv2d):
    """Depthwise convolution synapse (``torch.conv2d`` with ``groups = C``): output channel c reads input channel
    c alone through its own ``kh x kw`` kernel, ``weight [C, 1, kh, kw]``. Integer like ``Conv2d``. On chip a
    core stores each of its channels' kernels once (fan-in kh * kw)."""

    @property
    def groups(self) -> int:
        return self.weight.shape[0]

    def dense_weight(self) -> np.ndarray:
        """Zero off the channel diagonal."""
        c = self.weight.shape[0]
        w = np.zeros((c, c, *self.weight.shape[2:]), dtype=self.weight.dtype)
        w[np.arange(c), np.arange(c)] = self.weight[:, 0]
        return w


@op
class Dense(Op):
    """Token-wise linear synapse (1x1 conv): ``y[:, n] = W x[:, n] (+ b)``. Integer like ``Conv2d``."""

    weight: np.ndarray  # [C_out, C_in]
    bias: np.ndarray | None = None
    weight_exp: int = 0
    weight_bits: int | None = None
    synapse: ClassVar[bool] = True
    delay: ClassVar[int] = 1
    integer_arrays: ClassVar[tuple[str, ...]] = ("weight",)

    def out_shape(self, s):
        assert_channels(self, s[0], self.weight.shape[1])
        return (self.weight.shape[0], *s[1:])


@op
class BatchNorm(Op):
    """Eval-mode batch norm as a per-channel affine map ``y = x * scale + shift`` (removed by fold_batchnorm)."""

    scale: np.ndarray
    shift: np.ndarray
    dialects: ClassVar[tuple[str, ...]] = (FLOAT,)

    def out_shape(self, s):
        return tuple(s)


@op
class LIF(Op):
    """spikingjelly LIF (tau, v_threshold, hard reset to 0, ties fire) written on the scale ``V = tau * h``:
    ``V_t = V_{t-1} * (1 - s_{t-1}) / tau + x_t``, spike iff ``V_t >= tau * v_threshold``. With tau = 2 this is
    Loihi's LIF with du = 4095 and dv = 2048. Float dialect only: ``quantize`` turns it into ``LoihiLIF``."""

    v_threshold: float
    tau: float = 2.0
    spiking: ClassVar[bool] = True
    neuron_group: ClassVar[bool] = True
    dialects: ClassVar[tuple[str, ...]] = (FLOAT,)

    def out_shape(self, s):
        return tuple(s)

    @property
    def threshold(self) -> float:
        """Threshold on the V scale."""
        return self.tau * self.v_threshold


@op
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
    spiking: ClassVar[bool] = True
    neuron_group: ClassVar[bool] = True
    dialects: ClassVar[tuple[str, ...]] = (INTEGER,)
    integer_arrays: ClassVar[tuple[str, ...]] = ("bias_mant",)

    def out_shape(self, s):
        return tuple(s)

    @property
    def effective_bias(self) -> np.ndarray:
        return self.bias_mant.astype(np.int64) << self.bias_exp


@op
class OrPool(Op):
    """MaxPool2d on binary spikes, i.e. an OR over each window (padding never wins: spikes are >= 0). On chip: a
    depthwise synapse of ones (one step) into OR neurons."""

    kernel: int = 3
    stride: int = 2
    padding: int = 1
    spiking: ClassVar[bool] = True
    neuron_group: ClassVar[bool] = True
    delay: ClassVar[int] = 1

    def out_shape(self, s):
        c, h, w = s
        return (c, (h + 2 * self.padding - self.kernel) // self.stride + 1,
                (w + 2 * self.padding - self.kernel) // self.stride + 1)


@op
class Add(Op):
    """Residual sum of spike tensors: graded integer values (0 .. number of summed binary sources). On chip: a
    relay whose input port sums the delay-balanced inputs (one step)."""

    delay: ClassVar[int] = 1

    def out_shape(self, *shapes):
        if len(set(map(tuple, shapes))) != 1:
            raise ValueError(f"Add of different shapes {shapes}")
        return tuple(shapes[0])

    def out_bound(self, *in_bounds):
        return float(sum(in_bounds))


@op
class StreamSum(Op):
    """The real-valued residual stream ("membrane shortcut") of Spikingformer and the Spike-driven Transformer: the
    sum of synapse outputs and earlier stream values (one input: a relay of a synapse's output). Integer dialect:
    the stream's integers on one scale ``1 / sigma`` per graph, each writing synapse's bias carried on to the neurons
    and the head that read the stream (``quantize``). On chip: graded relay neurons (no leak memory: du = dv = 4095)
    whose dendrites sum the delay-balanced synaptic inputs each step and which send the sum on as a graded spike
    (one step). The synapses that write the stream are theirs."""

    neuron_group: ClassVar[bool] = True
    delay: ClassVar[int] = 1

    def out_shape(self, *shapes):
        return Add.out_shape(self, *shapes)


@op
class MaxPool(Op):
    """MaxPool2d on real values (the Spike-driven Transformer's pool of its tokenizer's last BatchNorm output):
    padding never wins. Integer: the max of the stream's integers (a per-channel bias carried past it commutes with
    the max). On chip: the embedded cores, within the step its input arrives."""

    embedded: ClassVar[bool] = True

    kernel: int = 3
    stride: int = 2
    padding: int = 1

    def out_shape(self, s):
        return OrPool.out_shape(self, s)

    def out_bound(self, bound):
        return bound


@op
class AndTokenSum(Op):
    """SDSA's column sum (Spike-driven Transformer): per channel, the number of tokens where k AND v spike,
    ``[C, N], [C, N] -> [C, 1]``, integers 0..N; integer dialect: shifted left by ``out_shift`` (quantize) into the
    LIF that reads it. On chip: AND + popcount on the embedded cores, within the step its inputs arrive."""

    embedded: ClassVar[bool] = True

    out_shift: int = 0

    def out_shape(self, k, v):
        if tuple(k) != tuple(v):
            raise ValueError(f"k and v shapes differ: {k}, {v}")
        return (k[0], 1)


@op
class ChannelMask(Op):
    """SDSA's mask: q AND the per-channel spike ``m`` broadcast over the tokens, ``[C, N], [C, 1] -> [C, N]``:
    binary. On chip: AND gates on the embedded cores, within the step its inputs arrive."""

    embedded: ClassVar[bool] = True

    def out_shape(self, q, m):
        if tuple(m) != (q[0], 1):
            raise ValueError(f"mask {m} does not fit q {q}")
        return tuple(q)

    def out_bound(self, *in_bounds):
        return 1.0


@op
class TokenMean(Op):
    """Mean over the tokens, ``[C, N] -> [C, 1]`` (the Spike-driven Transformer's pooling before head_lif).
    Integer: the sum over the tokens shifted right by ``shift`` (arithmetic: floor), the 1/N and the stream's scale
    going into the reading LIF's threshold (quantize). On chip: the embedded cores, within the step."""

    embedded: ClassVar[bool] = True

    shift: int = 0

    def out_shape(self, s):
        return (s[0], 1)


@op
class Flatten(Op):
    """Image ``[C, H, W]`` to tokens ``[C, H*W]`` (row-major, as the original's ``flatten(-2)``). The grid (H, W)
    stays known: ``Graph.grid``."""

    def out_shape(self, s):
        return (s[0], s[1] * s[2])

    def out_bound(self, bound):
        return bound


@op
class Unflatten(Op):
    """Tokens ``[C, H*W]`` back to the image ``[C, H, W]`` (Meta-SpikeFormer's attention output before its 3x3
    projection): ``Flatten`` undone."""

    height: int = 1
    width: int = 1

    def out_shape(self, s):
        if s[1] != self.height * self.width:
            raise ValueError(f"Unflatten of {s[1]} tokens to {self.height} x {self.width}")
        return (s[0], self.height, self.width)

    def out_bound(self, bound):
        return bound


@op
class Vectorize(Op):
    """Image ``[C, H, W]`` to one position holding every value, ``[C*H*W, 1, 1]``, in (c, h, w) row-major order:
    what lava-dl netx's ``flatten`` layer does before a dense layer (its ``transpose([2, 1, 0]).flatten()`` of the
    (x, y, c) port). A dense layer is then a 1x1 ``Conv2d`` on it."""

    def out_shape(self, s):
        return (int(np.prod(s)), 1, 1)

    def out_bound(self, bound):
        return bound


@op
class SpikingAttention(Op):
    """Spiking self-attention core on binary q, k, v ``[C, N]`` split into heads of ``head_dim`` channels:
    ``M = Q Kᵀ V`` per head (integers: AND + popcount, then additions gated by spikes), output ``M * scale`` before
    ``rewrite_ssa`` and ``M << out_shift`` after it (the scale then sits in attn_lif's threshold).
    ``order``: ``"qk_v"`` computes (Q Kᵀ) V (~N²d), ``"q_kv"`` computes Q (Kᵀ V) (~N d²); same integers.
    On chip it runs on the embedded cores within the step its inputs arrive (no synapse hop)."""

    num_heads: int
    head_dim: int
    scale: float
    order: str
    out_shift: int = 0
    rewritten: bool = False
    embedded: ClassVar[bool] = True

    def out_shape(self, q, k, v):
        if not q == k == v:
            raise ValueError(f"q, k, v shapes differ: {q}, {k}, {v}")
        return tuple(q)

    def dialect_error(self, dialect):
        if dialect == INTEGER and not self.rewritten:
            return "SpikingAttention must be rewritten (rewrite_ssa) in the integer dialect"
        return super().dialect_error(dialect)


@dataclass(frozen=True)
class Wiring:
    """The fixed synapses into one group of the attention on neurocores (``lower_attention``), per sample and step:
    ``fan_in`` synapses per neuron; ``fan_out[k]`` synapses per non-zero element of input k; ``axons_per_neuron``:
    the distinct input axons a core needs per neuron it holds, when it holds neurons that share inputs (one head,
    a run of tokens); ``weight_bits``: 1 for the AND and count synapses (weights 1), 8 for graded ones."""

    fan_in: int
    fan_out: tuple[int, ...]
    axons_per_neuron: float
    weight_bits: int


@op
class AttentionStage(Op):
    """One stage of Spiking Self-Attention on neurocores (``passes/lower_attention.py``): q, k, v binary ``[C, N]``
    with ``C = num_heads * head_dim``; ``order`` as ``SpikingAttention``'s (the same integers). Index conventions
    (h head, i / j channel in the head, n / m token), q_kv then qk_v:

    - ``AttentionAnd(k, v)``: ``[(h, i, j), m] = k[(h, i), m] AND v[(h, j), m]``; ``AttentionAnd(q, k)``:
      ``[(h, n, i), m] = q[(h, i), n] AND k[(h, i), m]``;
    - ``AttentionCount``: ``[(h, i, j), 0] = sum_m``; ``[(h, n), m] = sum_i``;
    - ``AttentionProduct(counts, q)``: ``[(h, i, j), n] = counts[(h, i, j)] * q[(h, i), n]``;
      ``AttentionProduct(counts, v)``: ``[(h, n, j), m] = counts[(h, n), m] * v[(h, j), m]``;
    - ``AttentionSum``: ``M[(h, j), n] = (sum_i [(h, i, j), n]) << out_shift``;
      ``M[(h, j), n] = (sum_m [(h, n, j), m]) << out_shift``.

    Every stage but the sum is a neuron group fed by its own fixed synapses (one hop); the sum is the synapses into
    attn_lif. Integer dialect only (the lowering follows ``quantize``)."""

    num_heads: int
    head_dim: int
    order: str
    delay: ClassVar[int] = 1
    dialects: ClassVar[tuple[str, ...]] = (INTEGER,)

    @property
    def channels(self) -> int:
        return self.num_heads * self.head_dim

    def wiring(self, tokens: int) -> Wiring:
        raise NotImplementedError

    def _check(self, *shapes):
        if self.order not in ("q_kv", "qk_v"):
            raise ValueError(f"{self.type}: order {self.order!r} is neither q_kv nor qk_v")
        for s in shapes:
            if len(s) != 2 or s[0] != self.channels:
                raise ValueError(f"{self.type} of {self.num_heads} x {self.head_dim} channels reads {list(s)}")


def _pairs(order: str, heads: int, d: int, n: int) -> int:
    """Channels of the AND and product stages: (h, i, j) for q_kv, (h, n, i) for qk_v."""
    return heads * d * d if order == "q_kv" else heads * n * d


@op
class AttentionAnd(AttentionStage):
    """AND neurons (lava LIF, du = dv = 4095, vth = 1: fire iff both weight-1 inputs spiked), see AttentionStage."""

    spiking: ClassVar[bool] = True
    neuron_group: ClassVar[bool] = True

    def out_shape(self, a, b):
        self._check(a, b)
        if tuple(a) != tuple(b):
            raise ValueError(f"AttentionAnd of different shapes {a}, {b}")
        return (_pairs(self.order, self.num_heads, self.head_dim, a[1]), a[1])

    def wiring(self, tokens):
        # q_kv: k_(h,i),m reaches the d pairs (i, j) of its token; qk_v: q_(h,i),n the N pairs (n, i, m)
        fan = self.head_dim if self.order == "q_kv" else tokens
        return Wiring(2, (fan, fan), 2 / fan, 1)


@op
class AttentionCount(AttentionStage):
    """Graded relay neurons (lava GradedVec, vth = 0) summing AND spikes: 0..N (q_kv) or 0..d (qk_v)."""

    neuron_group: ClassVar[bool] = True

    def out_shape(self, s):
        self._check()
        d, heads = self.head_dim, self.num_heads
        if self.order == "q_kv":
            if s[0] != heads * d * d:
                raise ValueError(f"AttentionCount reads {list(s)}, not the {heads * d * d} pairs")
            return (s[0], 1)
        if s[0] != heads * s[1] * d:
            raise ValueError(f"AttentionCount reads {list(s)}, not the {heads * s[1] * d} pairs")
        return (heads * s[1], s[1])

    def wiring(self, tokens):
        fan_in = tokens if self.order == "q_kv" else self.head_dim
        return Wiring(fan_in, (1,), float(fan_in), 1)


@op
class AttentionProduct(AttentionStage):
    """Product neurons (lava ProdNeuron, vth = 0): a count times the third operand's spike, as a graded spike."""

    neuron_group: ClassVar[bool] = True

    def out_shape(self, counts, x):
        self._check(x)
        n, d, heads = x[1], self.head_dim, self.num_heads
        expected = (heads * d * d, 1) if self.order == "q_kv" else (heads * n, n)
        if tuple(counts) != expected:
            raise ValueError(f"AttentionProduct: counts {list(counts)}, expected {list(expected)}")
        return (_pairs(self.order, heads, d, n), n)

    def wiring(self, tokens):
        d = self.head_dim
        # q_kv: a count reaches its N products, q_(h,i),n the d products (i, j, n); qk_v: a count (h, n, m) its d
        # products, v_(h,j),m the N products (n, j, m)
        fan = (tokens, d) if self.order == "q_kv" else (d, tokens)
        return Wiring(2, fan, 1 / fan[0] + 1 / fan[1], 8)


@op
class AttentionSum(AttentionStage):
    """The synapses from the products into attn_lif (graded, weight ``1 << out_shift``); no neurons of its own."""

    out_shift: int = 0

    def out_shape(self, s):
        self._check()
        if s[0] != _pairs(self.order, self.num_heads, self.head_dim, s[1]):
            raise ValueError(f"AttentionSum reads {list(s)}, not the products of {self.num_heads} x {self.head_dim}")
        return (self.channels, s[1])

    def wiring(self, tokens):
        fan_in = self.head_dim if self.order == "q_kv" else tokens
        return Wiring(fan_in, (1,), float(fan_in), 8)


ATTENTION_STAGES = (AttentionAnd, AttentionCount, AttentionProduct, AttentionSum)


@op
class Head(Op):
    """Classifier on the host: mean over tokens and time steps of the last residual stream, then ``W x + b``.
    Integer: integer sums (no division; argmax is unchanged by 1/(N*T)), integer weights, ``bias`` pre-multiplied by
    N*T; ``scale`` maps integer logits back to float logits. Its output size is the class count."""

    weight: np.ndarray  # [classes, C]
    bias: np.ndarray
    weight_bits: int | None = None
    scale: float | None = None
    integer_arrays: ClassVar[tuple[str, ...]] = ("weight", "bias")

    def out_shape(self, s):
        assert_channels(self, s[0], self.weight.shape[1])
        return (self.weight.shape[0],)


def assert_channels(op: Op, got: int, expected: int) -> None:
    if got != expected:
        raise ValueError(f"{op.type} expects {expected} input channels, got {got}")


OP_TYPES: dict[str, type[Op]] = {cls.__name__: cls for cls in (
    Input, Conv2d, DepthwiseConv2d, Dense, BatchNorm, LIF, LoihiLIF, OrPool, Add, StreamSum, MaxPool, Flatten,
    Unflatten, Vectorize, SpikingAttention, AndTokenSum, ChannelMask, TokenMean, AttentionAnd, AttentionCount,
    AttentionProduct, AttentionSum, Head)}
