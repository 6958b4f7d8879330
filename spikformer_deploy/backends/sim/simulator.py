"""Layer-synchronous interpreter of the deploy IR, batched and vectorised with torch (CPU, or CUDA when asked).

Two meanings, by the graph's dialect:
- ``float``: the float reference, "exact" mode — spikingjelly's LIF on the ``V = tau * h`` scale, ``>=``
  thresholds. It reproduces the original code's spikes. It runs in float64, or, where ``guard.guard_plan`` applies
  (a run without counters, on the CPU), in float32 with every spike decision checked against float64's rounding
  bound and the doubtful rows recomputed in float64: the same spikes;
- ``integer``: Loihi 2 integer arithmetic (lava's bit-accurate LIF and Dense). Integers are carried in float32 where
  every partial sum provably stays below 2**24 (exact), else in float64 (exact below 2**53).

Kernels only compute (``KERNELS``, one per op type). Counting and calibration are an observer (``counting.py``, as
torch.fx's Interpreter subclasses observe nodes): kernels hand it the intermediates it may want, and a run without
counters hands them to a no-op.

Each layer runs all T steps before the next layer (no pipeline delay: step t of a layer sees step t of its inputs).
Internal layouts: images ``[T, B, C, H, W]``, tokens ``[T, B, N, C]`` (channels last, so a token-wise synapse is
one GEMM).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ...counters import Counters
from ...errors import DataError, DeployError
from ...ir import Graph, Node, OpTable
from ...ir.ops import (ACT_SHIFT, DECAY_UNITY, LIF, STATE_BITS, Add, AndTokenSum, AttentionAnd, AttentionCount,
                       AttentionProduct, AttentionSum, BatchNorm, ChannelMask, Conv2d,
                       DepthwiseConv2d, Dense, Flatten, Head, Input, LoihiLIF, MaxPool, OrPool, SpikingAttention,
                       StreamSum, TokenMean, Unflatten, Vectorize)
from . import cpu_kernels, int8_gemm
from .guard import ROUNDING64, guard_plan, repair, row_error, split_weights

EXACT_FP32 = 2**24
STATE_MAX = 2 ** (STATE_BITS - 1)


@dataclass
class SimResult:
    logits: torch.Tensor  # [B, classes] (float; dequantized for an integer graph; no head: output summed over T)
    predictions: torch.Tensor  # [B]
    spike_counts: dict[str, torch.Tensor]  # neuron / OR node -> int64 [T, B]
    counters: Counters | None = None
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # recorded node outputs [T, B, ...]
    int_logits: torch.Tensor | None = None  # integer graph: exact integer logits
    states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # record_states: u, v [T, B, ...]


def time_steps(graph: Graph, x: torch.Tensor) -> int:
    """T of a run: the number of event frames, or the model's T for images."""
    return x.shape[1] if graph.input.op.kind == "events" else graph.steps


class Observer:
    """What a run reports besides its outputs; this one ignores everything (a run without counters)."""

    def intermediate(self, node: Node, **tensors: torch.Tensor) -> None:
        """Values a kernel computed on the way (the drive before its bias, the attention's first product)."""

    def state(self, node: Node, key: str, value: torch.Tensor) -> None:
        """A neuron state (``u``, ``v``) at one step."""

    def done(self, node: Node, inputs: list[torch.Tensor], out: torch.Tensor) -> None:
        """The node's kernel has run (its inputs are intact: kernels overwrite only buffers nobody reads later)."""

    def start(self, steps: int, batch: int) -> None:
        """A run of ``batch`` inputs of ``steps`` time steps begins."""

    def finish(self) -> Counters | None:
        return None


class Simulator:
    def __init__(self, graph: Graph, device: str | torch.device | None = None, count: bool = True,
                 record: tuple[str, ...] | set[str] | str = (), native_kernels: bool = True,
                 spike_rates: dict[str, float] | None = None, seed: int = 0, precision: str = "auto",
                 spikes_as_made: bool = False, record_states: tuple[str, ...] | set[str] = ()):
        """``record``: names of nodes whose outputs to keep (``"spikes"``: every neuron and OR node);
        ``native_kernels``: on the CPU, integer graphs run their synapses on oneDNN's exact int8 kernels (where they
        apply, ``int8_gemm``) and their neurons as one compiled pass (``cpu_kernels``), with uint8 spikes between
        them; False runs the portable torch code that CUDA runs (same bits);
        ``spike_rates``: spiking nodes whose outputs are replaced by independent spikes at these rates (estimates
        from published rates: each sample gets exactly round(rate x elements x T) spikes at random positions and
        steps, drawn from ``seed``), so that every count downstream is the network's under those rates;
        ``precision`` (a float graph): ``auto`` runs a run without counters on the CPU in guarded float32 where the
        graph allows it (``guard``), ``float64`` always in float64; ``spikes_as_made``: recorded spikes keep the
        type their kernel made (uint8 from the CPU kernels) instead of being widened to the graph's float type;
        ``record_states``: integer neurons (``LoihiLIF``) whose u and v to keep at every step, as lava's LIF holds
        them at the end of the step (v zeroed where it fired), in ``SimResult.states``."""
        if precision not in ("auto", "float64"):
            raise DeployError(f"precision {precision!r}: choose auto or float64")
        graph.validate()
        unknown = sorted(set(spike_rates or {}) - {n.name for n in graph.having("spiking")})
        if unknown:
            raise DataError(f"spike rates given for nodes that do not spike: {', '.join(unknown)}")
        self.spike_rates = dict(spike_rates or {})
        self.generator = torch.Generator().manual_seed(seed)
        self.graph = graph
        self.device = torch.device(device or "cpu")
        self.count = count
        if record == "spikes":
            record = {n.name for n in graph.having("spiking")}
        self.record = set(record)
        not_neurons = sorted(set(record_states) - {n.name for n in graph.of_type(LoihiLIF)})
        if not_neurons:
            raise DataError(f"u and v exist only for integer neurons (LoihiLIF): not {', '.join(not_neurons)}")
        self.record_states = set(record_states)
        self.states: dict[str, dict[str, torch.Tensor]] = {}  # filled by the neurons of record_states, per run
        self.spikes_as_made = spikes_as_made
        self.quantized = graph.integer
        self.native = native_kernels and self.quantized and self.device.type == "cpu"
        # which LIFs check which synapses' float32 drives; None: no guarded float32 run (a recorded synapse
        # output must be the drive itself, not its guarded parts)
        self.guard = guard_plan(graph) if (precision == "auto" and not self.quantized and not count
                                           and self.device.type == "cpu") else None
        if self.guard is not None and self.record & set(self.guard.lifs.values()):
            self.guard = None
        self.float_dtype = torch.float32 if self.quantized or self.guard is not None else torch.float64
        self.repaired: dict[str, int] = {}  # guarded LIF -> rows recomputed in float64 (all runs so far)
        self._guarded_inputs: dict[str, tuple] = {}  # guarded synapse -> (its input, row_error), until its LIF runs
        self.bounds = graph.value_bounds()
        self.last_use = graph.last_uses()
        self.params: dict[str, dict] = {}
        for node in graph.nodes.values():
            KERNELS(node)  # every op has a kernel before anything runs
            prepare = PREPARE.get(type(node.op))
            self.params[node.name] = prepare(self, node) if prepare else {}
        from .counting import CountingObserver  # counting reads this module's kernels' conventions

        # a weak reference back: no cycle, so a simulator's tensors go the moment it does (calibration's float64
        # weights, 0.5 GB at 8-768, were otherwise held until the cyclic collector happened to run)
        self.observer = CountingObserver(weakref.proxy(self)) if count else Observer()

    def _float64(self) -> "Simulator":
        """This simulator's float64 twin (inputs that float32 cannot hold)."""
        if not hasattr(self, "_twin"):
            self._twin = Simulator(self.graph, self.device, False, self.record, spike_rates=self.spike_rates,
                                   precision="float64", spikes_as_made=self.spikes_as_made)
        return self._twin

    def tensor(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        # a copy: op arrays are read-only, and a tensor must not share their memory
        return torch.tensor(np.ascontiguousarray(array), dtype=dtype or self.float_dtype, device=self.device)

    def owns(self, node: Node, index: int = 0) -> bool:
        """Whether ``node`` may overwrite its input buffer: it is the last reader and nobody records it."""
        name = node.inputs[index]
        return self.last_use.get(name) == node.name and name not in self.record and name != self.graph.input.name

    def time_steps(self, x: torch.Tensor) -> int:
        return time_steps(self.graph, x)

    def forced_spikes(self, out: torch.Tensor, rate: float) -> torch.Tensor:
        """``out``'s shape [T, B, ...] and type, with exactly round(rate x elements x T) spikes per sample."""
        steps, batch = out.shape[:2]
        per_step = out[0, 0].numel()
        spikes = torch.zeros(batch, steps * per_step, dtype=torch.uint8)
        count = round(rate * steps * per_step)
        for b in range(batch):
            spikes[b, torch.randperm(steps * per_step, generator=self.generator)[:count]] = 1
        return spikes.view(batch, steps, *out.shape[2:]).transpose(0, 1).contiguous().to(out.device, out.dtype)

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> SimResult:
        x = torch.as_tensor(x)
        if not torch.is_floating_point(x):
            x = x.float()
        if not torch.isfinite(x).all():
            raise DataError("input holds NaN or Inf values")
        if self.guard is not None and x.dtype == torch.float64 and not torch.equal(x.float().double(), x):
            return self._float64().run(x)  # float32 would round the input itself
        env: dict[str, torch.Tensor] = {}
        self.states = {}
        self.observer.start(self.time_steps(x), x.shape[0])
        spike_counts, outputs = {}, {}
        for node in self.graph.nodes.values():
            inputs = [env[i] for i in node.inputs] if node.inputs else [x.to(self.device)]
            try:
                out = KERNELS(node)(self, node, inputs)
            except DeployError:
                raise
            except Exception as exc:  # name the node, as torch.fx's Interpreter does
                raise RuntimeError(f"while executing {node.name} ({node.op.type}): {exc}") from exc
            if node.name in self.spike_rates:
                out = self.forced_spikes(out, self.spike_rates[node.name])
            self.observer.done(node, inputs, out)
            env[node.name] = out
            if node.op.spiking:
                spike_counts[node.name] = per_sample_sum(out).round().to(torch.int64).cpu()
            if node.name in self.record:  # spikes in the graph's float type, unless kept as their kernel made them
                if node.op.type == "Head":
                    outputs[node.name] = out[0].cpu()
                else:
                    outputs[node.name] = (out if self.spikes_as_made and node.op.spiking else
                                          out.to(self.float_dtype)).cpu()
            for i in node.inputs:  # free buffers nobody reads any more
                if self.last_use.get(i) == node.name:
                    del env[i]
        if isinstance(self.graph.output.op, Head):
            logits, int_logits = env[self.graph.output.name]
        else:  # a network without a classifier (e.g. netx): its output summed over the time steps
            logits, int_logits = env[self.graph.output.name].flatten(2).sum(0), None
        return SimResult(logits=logits.float().cpu(), predictions=logits.argmax(1).cpu(), spike_counts=spike_counts,
                         counters=self.observer.finish(), outputs=outputs,
                         int_logits=None if int_logits is None else int_logits.cpu(), states=self.states)


# -- preparation: per-node constants on the device ----------------------------------------------------------------
def _int8_applies(sim: Simulator, node: Node, dtype: torch.dtype) -> bool:
    """Whether oneDNN's int8 kernel computes this synapse exactly: CPU, 8-bit weights, inputs 0..255, and sums that
    float32 holds exactly (its output type)."""
    return (sim.native and dtype == torch.float32 and int8_gemm.fits(node.op.weight)
            and not isinstance(node.op, DepthwiseConv2d)
            and int8_gemm.unsigned_bytes(sim.graph, node.inputs[0], sim.bounds) and int8_gemm.available())


def prepare_synapse(sim: Simulator, node: Node) -> dict:
    """The weights in the run's type (or packed for oneDNN's int8 kernel), the bias, and what is left of Loihi's
    ``<< weight_exp`` and 24-bit saturation: a non-negative exponent rides in the int8 kernel's output scale (a
    power of two: exact), and saturation is skipped where no drive can reach 2**23. An integer synapse runs in
    float32 when every partial sum provably stays below 2**24, else in float64."""
    op = node.op
    if sim.guard is not None and node.name in sim.guard.lifs.values():  # the LIF adds the parts and the bias
        weight, chan_err = split_weights(op, sim.bounds[node.inputs[0]] if node.name in sim.guard.integer_inputs
                                         else None)
        key = "w" if isinstance(op, Conv2d) else "wt"
        return {"dtype": torch.float32, "b": None, "shift": 0, "saturates": False, "chan_err": chan_err,
                key: sim.tensor(weight if key == "w" else weight.T, torch.float32),
                "split": len(weight) != len(op.weight),
                "bias": np.zeros(len(op.weight)) if op.bias is None else np.array(op.bias, np.float64)}
    dtype, exp, saturates = torch.float64, 0, False
    if sim.quantized:
        largest = np.abs(op.weight.astype(np.float64)).reshape(op.weight.shape[0], -1).sum(1).max(initial=0.0) \
            * sim.bounds[node.inputs[0]]
        dtype = torch.float32 if largest < EXACT_FP32 else torch.float64
        exp, saturates = op.weight_exp, largest * 2.0**op.weight_exp >= STATE_MAX
    p = {"dtype": dtype, "b": None if op.bias is None else sim.tensor(op.bias, dtype), "shift": exp,
         "saturates": saturates}
    if _int8_applies(sim, node, dtype):
        scale = 2.0 ** max(exp, 0)
        p["int8"] = int8_gemm.Conv(op.weight, op.stride, op.padding, scale) if isinstance(op, Conv2d) else \
            int8_gemm.Linear(op.weight, scale)
        p["shift"] = min(exp, 0)  # an arithmetic shift right rounds down: left to _shift
    elif isinstance(op, Conv2d):
        p["w"] = sim.tensor(op.weight, dtype)
    else:
        p["wt"] = sim.tensor(op.weight.T, dtype)
    return p


def _loihi_drive(p: dict, drive: torch.Tensor) -> torch.Tensor:
    """The synapse's remaining shift and saturation (``prepare_synapse``), in place."""
    if p["shift"]:
        drive = _shift(drive, p["shift"])
    return _saturate24(drive) if p["saturates"] else drive


def prepare_lif(sim: Simulator, node: Node) -> dict:
    op = node.op
    if isinstance(op, LIF):
        return {"decay": 1.0 - 1.0 / op.tau, "threshold": op.threshold}
    k_u, k_v = DECAY_UNITY - (op.du + 1), DECAY_UNITY - op.dv
    channels = node.shape[0]
    bias = np.broadcast_to(op.effective_bias.reshape(-1), (channels,))
    if sim.native and node.name not in sim.record_states:  # a traced neuron runs the torch recurrence
        return {"k_u": k_u, "k_v": k_v, "bias": bias.astype(np.int64), "vth": op.vth << ACT_SHIFT}
    # float32 is exact when the decay multiplies by 0 or a power of two; other decays need float64
    exact32 = all(k == 0 or (k & (k - 1)) == 0 for k in (k_u, k_v))
    dtype = torch.float32 if exact32 else torch.float64
    # tokens are [T, B, N, C] (bias on the last axis); images [T, B, C, H, W] (bias on axis 2)
    shape = (channels,) if len(node.shape) == 2 else (channels, 1, 1)
    return {"k_u": k_u / DECAY_UNITY, "k_v": k_v / DECAY_UNITY, "dtype": dtype,
            "bias": sim.tensor(bias.astype(np.float64).reshape(shape), dtype), "vth": float(op.vth << ACT_SHIFT)}


def prepare_head(sim: Simulator, node: Node) -> dict:
    op = node.op
    return {"wt": sim.tensor(op.weight.T, torch.float64), "b": sim.tensor(op.bias, torch.float64)}


# -- kernels: (sim, node, inputs) -> output ---------------------------------------------------------------
def run_input(sim: Simulator, node: Node, inputs):
    op, x = node.op, inputs[0]
    expected = tuple(op.shape)
    if op.kind == "events":
        if x.ndim != 5 or tuple(x.shape[2:]) != expected:
            raise DataError(f"expected event frames [B, T, {', '.join(map(str, expected))}], got {list(x.shape)}")
        x = x.permute(1, 0, 2, 3, 4)
        if sim.quantized:
            x = x.round().clamp(0, 2 ** (op.bits or 8) - 1)
        return x.to(sim.float_dtype).contiguous()
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise DataError(f"expected images [B, {', '.join(map(str, expected))}], got {list(x.shape)}")
    x = x.to(torch.float64)
    if sim.quantized:
        lo, hi = (-(2 ** (op.bits - 1)), 2 ** (op.bits - 1) - 1) if op.signed else (0, 2**op.bits - 1)
        x = (x * op.scale).round().clamp(lo, hi)
    return x.to(sim.float_dtype).unsqueeze(0).expand(sim.graph.steps, *x.shape)


def _saturate24(a: torch.Tensor) -> torch.Tensor:
    """Loihi's 24-bit dendritic accumulator saturates (lava's Conv model clamps its output the same way)."""
    return a.clamp_(-STATE_MAX, STATE_MAX - 1)


def _shift(a: torch.Tensor, exp: int) -> torch.Tensor:
    """Loihi's ``a << exp`` (arithmetic ``>>`` for a negative exponent) on exact integers held in floats, in place."""
    return a.mul_(2.0**exp) if exp >= 0 else a.div_(2.0 ** (-exp)).floor_()


IM2COL_BYTES = 64 * 2**20


def _conv_in_chunks(x: torch.Tensor, w: torch.Tensor, stride, padding, groups: int = 1) -> torch.Tensor:
    """``conv2d`` over slices of the batch: torch's float64 CPU convolution unfolds its whole input at once (im2col:
    0.9 GB for one 3x3 layer of the 4-384 model at batch 32, T = 4). Each sample's result is the same either way."""
    out_hw = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(x.shape[-2:], padding, w.shape[-2:], stride)]
    per_sample = w[0].numel() * out_hw[0] * out_hw[1] * x.element_size()
    chunk = max(1, IM2COL_BYTES // per_sample)
    if x.dtype != torch.float64 or chunk >= len(x):  # oneDNN's float32 convolution needs no such buffer
        return F.conv2d(x, w, None, stride, padding, 1, groups)
    return torch.cat([F.conv2d(part, w, None, stride, padding, 1, groups) for part in x.split(chunk)])


def _keep_for_guard(sim: Simulator, node: Node, x: torch.Tensor) -> None:
    """A guarded synapse's input and per-row error factor, for its LIF's check and repair."""
    p = sim.params[node.name]
    if "chan_err" in p:  # a split synapse's row factor comes out of its own GEMM
        sim._guarded_inputs[node.name] = (x, None if p["split"] else row_error(node.op, x))


def run_conv(sim: Simulator, node: Node, inputs):
    p, op, x = sim.params[node.name], node.op, inputs[0]
    _keep_for_guard(sim, node, x)
    steps, batch = x.shape[:2]
    x = x.reshape(steps * batch, *x.shape[2:])
    drive = p["int8"](x) if "int8" in p else \
        _conv_in_chunks(x.to(p["dtype"]), p["w"], op.stride, op.padding, op.groups)
    drive = _loihi_drive(p, drive.reshape(steps, batch, *drive.shape[1:]))
    sim.observer.intermediate(node, drive=drive)
    if p["b"] is not None:  # in place: the drive is this kernel's own buffer, and the observer is done with it
        drive.add_(p["b"].reshape(-1, 1, 1))
    return drive.to(sim.float_dtype)


def run_dense(sim: Simulator, node: Node, inputs):
    p, x = sim.params[node.name], inputs[0]
    _keep_for_guard(sim, node, x)
    # [T, B, N, C_in] @ [C_in, C_out]
    drive = _loihi_drive(p, p["int8"](x) if "int8" in p else torch.matmul(x.to(p["dtype"]), p["wt"]))
    sim.observer.intermediate(node, drive=drive)
    if p["b"] is not None:  # in place, as in run_conv
        drive.add_(p["b"])
    return drive.to(sim.float_dtype)


def run_batchnorm(sim: Simulator, node: Node, inputs):
    x = inputs[0]
    shape = (-1,) if x.ndim == 4 else (-1, 1, 1)  # tokens carry channels last
    scale, shift = (sim.tensor(a).reshape(shape) for a in (node.op.scale, node.op.shift))
    return x * scale + shift


def per_sample_sum(x: torch.Tensor) -> torch.Tensor:
    """``[T, B]`` sums of ``[T, B, ...]`` (int64 for uint8 spikes), whatever the memory layout (flattening a
    channels-last tensor would copy it)."""
    if x.dtype == torch.uint8:
        return cpu_kernels.position_sums(x)[0].sum(2)
    return x.sum(dim=tuple(range(2, x.ndim)))


def abs_max(x: torch.Tensor) -> torch.Tensor:
    lo, hi = torch.aminmax(x)
    return torch.maximum(hi, -lo)


def run_lif(sim: Simulator, node: Node, inputs):
    p, x = sim.params[node.name], inputs[0]
    if sim.device.type == "cpu":
        return _compiled_lif(sim, node, x)
    out = x if sim.owns(node) else torch.empty_like(x)  # step t's spikes overwrite step t's input once it is used
    v = torch.zeros_like(x[0])
    s = torch.empty(v.shape, dtype=torch.bool, device=v.device)
    for t in range(x.shape[0]):  # in place: fresh large tensors each step cost more than the arithmetic
        v.mul_(p["decay"]).add_(x[t])
        torch.ge(v, p["threshold"], out=s)
        sim.observer.state(node, "v", v)
        out[t].copy_(s)
        v.mul_(s.logical_not_())  # reset to 0 where it fired (4x cheaper than masked_fill_)
    return out


def _compiled_lif(sim: Simulator, node: Node, x: torch.Tensor) -> torch.Tensor:
    """``run_lif`` as one compiled pass (``cpu_kernels.float_lif``: bit for bit the recurrence above, v in float64),
    with the guard's check and repair where the drive is a guarded float32 synapse's."""
    p = sim.params[node.name]
    drive = x.contiguous()
    if drive is x and not sim.owns(node):  # the spikes overwrite the drive: only a buffer nobody else reads
        drive = x.clone()
    src = sim.guard.lifs.get(node.name) if sim.guard is not None else None
    guard = None
    if src is not None:
        x_in, err = sim._guarded_inputs.pop(src)
        sp = sim.params[src]
        guard = {"row_err": None if err is None else err.numpy(), "chan_err": sp["chan_err"], "bias": sp["bias"], "split": sp["split"],
                 "rounding": ROUNDING64}
    out, flags, vmax = cpu_kernels.float_lif(drive, p["decay"], p["threshold"], guard)
    sim.observer.state(node, "v", torch.tensor(vmax, dtype=torch.float64))
    if flags is not None and flags.any():
        sim.repaired[node.name] = sim.repaired.get(node.name, 0) + repair(
            sim.graph.nodes[src].op, x_in, flags, out, p["decay"], p["threshold"])
    return out


def _decay(x: torch.Tensor, k: float) -> torch.Tensor:
    """Loihi's ``sign(x) * (|x * k'| >> 12)`` with k = k' / 4096: truncation toward zero."""
    return torch.trunc(x * k) if k else torch.zeros_like(x)


def _wrap24(u: torch.Tensor) -> torch.Tensor:
    """lava's 24-bit wrap of u (values just past +-2**23 come back around), written as lava writes it."""
    wrapped = torch.where(u > STATE_MAX, u - 2 * STATE_MAX, u)
    return torch.where(wrapped <= -STATE_MAX, u + 2 * STATE_MAX, wrapped)


def run_loihi_lif(sim: Simulator, node: Node, inputs):
    p = sim.params[node.name]
    traced = node.name in sim.record_states  # its u and v kept per step: the general recurrence below
    if sim.native and not traced:
        spikes, max_u, max_v = cpu_kernels.loihi_lif(inputs[0], p["bias"], p["k_u"], p["k_v"], p["vth"])
        sim.observer.state(node, "u", torch.tensor(max_u, dtype=torch.float64))
        sim.observer.state(node, "v", torch.tensor(max_v, dtype=torch.float64))
        return spikes
    a = inputs[0].to(p["dtype"])
    # the drive buffer is reused for the output spikes when nobody else reads it (allocations cost page faults)
    scaled = (a if sim.owns(node) and a is inputs[0] else a.clone()).mul_(2.0**ACT_SHIFT)
    max_a = float(abs_max(scaled)) if scaled.numel() else 0.0
    bias_max = float(p["bias"].abs().max())
    # Wrap and clamp change nothing while |u| <= 2**23 and |v| stays below 2**23 - 1: check once per layer (|v| is
    # at most sum_k (|u| + |bias|) / 2**k < 2 (|u| + |bias|)), so the common case runs the plain recurrence.
    current_memory = p["k_u"] != 0
    plain = not traced and not current_memory and max_a <= STATE_MAX and 2 * (max_a + bias_max) < STATE_MAX - 1
    out = scaled  # step t's spikes overwrite step t's drive once it is used
    u = torch.zeros_like(a[0])
    v = torch.zeros_like(a[0])
    s = torch.empty(v.shape, dtype=torch.bool, device=v.device)
    if plain:
        sim.observer.state(node, "u", scaled)  # u = a << 6 each step (du = 4095: no current memory)
        drive = scaled.add_(p["bias"])  # plus the bias
        for t in range(a.shape[0]):  # in place: fresh large tensors each step cost more than the arithmetic
            v.mul_(p["k_v"]).trunc_().add_(drive[t])
            torch.gt(v, p["vth"], out=s)
            sim.observer.state(node, "v", v)
            out[t].copy_(s)
            v.mul_(s.logical_not_())
    else:
        # traced: u and v after every step, as lava's LIF holds them (v zeroed where it fired)
        states = {"u": torch.empty_like(scaled), "v": torch.empty_like(scaled)} if traced else None
        for t in range(a.shape[0]):
            u = _wrap24(_decay(u, p["k_u"]) + scaled[t])
            v = (_decay(v, p["k_v"]) + u + p["bias"]).clamp_(-(STATE_MAX - 1), STATE_MAX - 1)
            torch.gt(v, p["vth"], out=s)
            sim.observer.state(node, "u", u)
            sim.observer.state(node, "v", v)
            out[t].copy_(s)
            v.mul_(s.logical_not_())
            if traced:
                states["u"][t], states["v"][t] = u, v
        if traced:
            sim.states[node.name] = {key: value.cpu() for key, value in states.items()}
    return out.to(sim.float_dtype)


def run_pool(sim: Simulator, node: Node, inputs):
    op, x = node.op, inputs[0]
    steps, batch = x.shape[:2]
    x = x.reshape(steps * batch, *x.shape[2:])
    # torch 2.3's CPU max-pool fails on channels-last uint8 (an index type too small): pool uint8 spikes as float32
    y = F.max_pool2d(x.float(), op.kernel, op.stride, op.padding).to(x.dtype) if x.dtype == torch.uint8 else \
        F.max_pool2d(x, op.kernel, op.stride, op.padding)
    return y.reshape(steps, batch, *y.shape[1:])


def run_max_pool(sim: Simulator, node: Node, inputs):
    out = run_pool(sim, node, inputs)
    sim.observer.intermediate(node, drive=out)  # a stream value: calibration reads its range
    return out


def run_add(sim: Simulator, node: Node, inputs):
    out = inputs[0]
    if out.dtype == torch.uint8 and sim.bounds[node.name] > int8_gemm.UINT8_MAX:
        out = out.to(sim.float_dtype)  # uint8 spikes would wrap in a sum that can pass 255
    for x in inputs[1:]:
        out = out + x
    return out


def run_stream_sum(sim: Simulator, node: Node, inputs):
    out = inputs[0].clone() if len(inputs) == 1 else run_add(sim, node, inputs)  # a relay: a buffer of its own
    sim.observer.intermediate(node, drive=out)  # calibration reads the stream's range
    return out


def run_and_token_sum(sim: Simulator, node: Node, inputs):
    """Per channel: tokens where k and v both spike; [T, B, N, C] -> [T, B, 1, C] (exact integers in floats)."""
    k, v = (x.to(sim.float_dtype) for x in inputs)
    out = (k * v).sum(2, keepdim=True)
    sim.observer.intermediate(node, drive=out)
    return _shift(out, node.op.out_shift) if sim.quantized else out


def run_channel_mask(sim: Simulator, node: Node, inputs):
    q, m = inputs
    return q * m.to(q.dtype)  # [T, B, N, C] * [T, B, 1, C]


def run_token_mean(sim: Simulator, node: Node, inputs):
    x = inputs[0].to(sim.float_dtype)
    if sim.quantized:  # integer sum, arithmetic shift right
        return _shift(x.sum(2, keepdim=True), -node.op.shift)
    out = x.mean(2, keepdim=True)
    sim.observer.intermediate(node, drive=out)
    return out


def run_flatten(sim: Simulator, node: Node, inputs):
    x = inputs[0]
    return x.flatten(3).transpose(-1, -2).contiguous()  # [T, B, C, H, W] -> [T, B, N, C]


def run_unflatten(sim: Simulator, node: Node, inputs):
    x = inputs[0]  # [T, B, N, C] -> [T, B, C, H, W]
    return x.transpose(-1, -2).reshape(*x.shape[:2], x.shape[-1], node.op.height, node.op.width).contiguous()


def run_vectorize(sim: Simulator, node: Node, inputs):
    x = inputs[0]
    return x.reshape(*x.shape[:2], -1, 1, 1)  # [T, B, C, H, W] -> [T, B, C*H*W, 1, 1], (c, h, w) row-major


def attention_inner(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, order: str) -> torch.Tensor:
    """The first product of the chosen order on binary [T, B, heads, N, d]: Q Kᵀ (qk_v) or Kᵀ V (q_kv)."""
    return q @ k.transpose(-2, -1) if order == "qk_v" else k.transpose(-2, -1) @ v


def run_attention(sim: Simulator, node: Node, inputs):
    op = node.op
    steps, batch, n, c = inputs[0].shape
    q, k, v = (x.reshape(steps, batch, n, op.num_heads, op.head_dim).transpose(2, 3).to(torch.float32)
               for x in inputs)
    inner = attention_inner(q, k, v, op.order)
    m = inner @ v if op.order == "qk_v" else q @ inner  # exact: values <= N*d*N < 2**24
    sim.observer.intermediate(node, q=q, k=k, v=v, inner=inner)
    m = m.transpose(2, 3).reshape(steps, batch, n, c).to(sim.float_dtype)
    sim.observer.intermediate(node, drive=m)  # the integer M before any scale or shift
    if op.rewritten:
        return _shift(m, op.out_shift) if sim.quantized else m
    return m * op.scale


def _heads(x: torch.Tensor, op, dtype: torch.dtype) -> torch.Tensor:
    """Tokens [T, B, N, C] -> [T, B, N, heads, d]."""
    return x.to(dtype).reshape(*x.shape[:3], op.num_heads, op.head_dim)


def run_attention_and(sim: Simulator, node: Node, inputs):
    """q_kv: [T, B, m, (h, i, j)] = k_(h,i),m v_(h,j),m; qk_v: [T, B, m, (h, n, i)] = q_(h,i),n k_(h,i),m."""
    op = node.op
    a, b = (_heads(x, op, sim.float_dtype) for x in inputs)
    if op.order == "q_kv":
        out = a[..., :, None] * b[..., None, :]  # [T, B, m, h, i, j]
    else:
        out = a.transpose(2, 3)[:, :, None] * b[:, :, :, :, None, :]  # [T, B, m, h, n, i]
    return out.reshape(*out.shape[:3], -1)


def run_attention_count(sim: Simulator, node: Node, inputs):
    """q_kv: the AND spikes summed over the tokens; qk_v: over i (exact integers in floats)."""
    op, x = node.op, inputs[0]
    if op.order == "q_kv":
        return x.sum(2, keepdim=True)
    return x.reshape(*x.shape[:-1], -1, op.head_dim).sum(-1)


def run_attention_product(sim: Simulator, node: Node, inputs):
    """q_kv: counts_(h,i,j) q_(h,i),n; qk_v: counts_(h,n),m v_(h,j),m."""
    op, (counts, x) = node.op, inputs
    x = _heads(x, op, sim.float_dtype)
    if op.order == "q_kv":
        out = counts.reshape(*counts.shape[:3], op.num_heads, op.head_dim, op.head_dim) * x[..., None]
    else:
        out = counts.reshape(*counts.shape[:3], op.num_heads, -1, 1) * x[:, :, :, :, None, :]
    return out.reshape(*out.shape[:3], -1)


def run_attention_sum(sim: Simulator, node: Node, inputs):
    """q_kv: M_(h,j),n = sum_i; qk_v: M_(h,j),n = sum_m; then << out_shift (exact: M <= N d < 2**24)."""
    op, x = node.op, inputs[0]
    steps, batch, tokens = x.shape[:3]
    if op.order == "q_kv":
        m = x.reshape(steps, batch, tokens, op.num_heads, op.head_dim, op.head_dim).sum(-2)
    else:
        m = x.reshape(steps, batch, tokens, op.num_heads, tokens, op.head_dim).sum(2).transpose(2, 3)
    return _shift(m.reshape(steps, batch, tokens, -1), op.out_shift)


def run_head(sim: Simulator, node: Node, inputs):
    p, op, x = sim.params[node.name], node.op, inputs[0].to(torch.float64)
    if sim.quantized:
        counts = x.sum(dim=(0, 2))  # integer sums; the 1/(N*T) of the mean is folded into the bias
        int_logits = counts @ p["wt"] + p["b"]
        return int_logits * op.scale, int_logits
    return x.mean(2).mean(0) @ p["wt"] + p["b"], None


KERNELS = OpTable("the simulator", {
    Input: run_input, Conv2d: run_conv, DepthwiseConv2d: run_conv, Dense: run_dense, BatchNorm: run_batchnorm,
    LIF: run_lif,
    LoihiLIF: run_loihi_lif, OrPool: run_pool, Add: run_add, StreamSum: run_stream_sum, MaxPool: run_max_pool, Flatten: run_flatten, Unflatten: run_unflatten,
    Vectorize: run_vectorize, SpikingAttention: run_attention, AndTokenSum: run_and_token_sum,
    ChannelMask: run_channel_mask, TokenMean: run_token_mean, AttentionAnd: run_attention_and,
    AttentionCount: run_attention_count, AttentionProduct: run_attention_product, AttentionSum: run_attention_sum,
    Head: run_head})
# per-node constants on the device, built once per Simulator (ops without an entry need none)
PREPARE = {Conv2d: prepare_synapse, DepthwiseConv2d: prepare_synapse, Dense: prepare_synapse, LIF: prepare_lif,
           LoihiLIF: prepare_lif, Head: prepare_head}
