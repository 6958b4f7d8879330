"""Layer-synchronous interpreter of the deploy IR, batched and vectorised with torch (CPU, or CUDA when asked).

Two meanings of the same graph, chosen by the graph itself:
- float graph (before ``quantize``): the float reference in float64, "exact" mode — spikingjelly's LIF on the
  ``V = tau * h`` scale, ``>=`` thresholds. It reproduces the original code's spikes;
- quantized graph: Loihi 2 integer arithmetic (lava's bit-accurate LIF and Dense). Integers are carried in float32
  where every partial sum provably stays below 2**24 (exact), else in float64 (exact below 2**53).

Each layer runs all T steps before the next layer (no pipeline delay: step t of a layer sees step t of its inputs).
Internal layouts: images ``[T, B, C, H, W]``, tokens ``[T, B, N, C]`` (channels last, so a token-wise synapse is
one GEMM).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import DataError, DeployError
from ...ir import Graph, Node
from ...ir.ops import (ACT_SHIFT, DECAY_UNITY, LIF, STATE_BITS, Add, BatchNorm, Conv2d, Dense, Flatten, Head, Input,
                       LoihiLIF, OrPool, SpikingAttention)
from ...counters import Counters

EXACT_FP32 = 2**24
STATE_MAX = 2 ** (STATE_BITS - 1)


@dataclass
class SimResult:
    logits: torch.Tensor  # [B, classes] (float; dequantized for an integer graph)
    predictions: torch.Tensor  # [B]
    spike_counts: dict[str, torch.Tensor]  # neuron / OR node -> int64 [T, B]
    counters: Counters | None = None
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # recorded node outputs [T, B, ...]
    int_logits: torch.Tensor | None = None  # integer graph: exact integer logits


def is_quantized(graph: Graph) -> bool:
    return any(isinstance(n.op, LoihiLIF) for n in graph.nodes.values())


class Simulator:
    def __init__(self, graph: Graph, device: str | torch.device | None = None, count: bool = True,
                 record: tuple[str, ...] | set[str] | str = ()):
        """``record``: names of nodes whose outputs to keep (``"spikes"``: every neuron and OR node)."""
        graph.validate()
        self.graph = graph
        self.device = torch.device(device or "cpu")
        self.count = count
        if record == "spikes":
            record = {n.name for n in graph.of_type(LIF, LoihiLIF, OrPool)}
        self.record = set(record)
        self.quantized = is_quantized(graph)
        self.float_dtype = torch.float32 if self.quantized else torch.float64
        self.bounds = graph.value_bounds()
        self.last_use = graph.last_uses()
        self.params: dict[str, dict] = {}
        for node in graph.nodes.values():
            prepare = PREPARE.get(type(node.op))
            if prepare is None and type(node.op) not in KERNELS:
                raise DeployError(f"the simulator cannot run {node.op.type} node {node.name}; run the passes first")
            self.params[node.name] = prepare(self, node) if prepare else {}

    def tensor(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype or self.float_dtype, device=self.device)

    def owns(self, node: Node, index: int = 0) -> bool:
        """Whether ``node`` may overwrite its input buffer: it is the last reader and nobody records it."""
        name = node.inputs[index]
        return self.last_use.get(name) == node.name and name not in self.record and name != self.graph.input.name

    def input_totals(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per step: (sum of values, number of non-zero elements, image map summed over samples and channels
        ``[T, H, W]`` or None) of node ``name``'s output, once per run (q, k and v read the same residual stream).
        Binary outputs need no count of their own: their events are their sum."""
        if name not in self._totals:
            spatial = x.sum(dim=(1, 2)) if x.ndim == 5 else None
            value = (spatial if spatial is not None else x).reshape(x.shape[0], -1).sum(1)
            events = value if self.bounds[name] == 1 else torch.count_nonzero(
                x.reshape(x.shape[0], -1), dim=1).to(value.dtype)
            self._totals[name] = (value, events, spatial)
        return self._totals[name]

    def time_steps(self, x: torch.Tensor) -> int:
        """T of a run: the number of event frames, or the model's T for images."""
        return x.shape[1] if self.graph.input.op.kind == "events" else self.graph.config.T

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> SimResult:
        x = torch.as_tensor(x)
        if not torch.is_floating_point(x):
            x = x.float()
        if not torch.isfinite(x).all():
            raise DataError("input holds NaN or Inf values")
        env: dict[str, torch.Tensor] = {}
        counters = Counters(self.time_steps(x)) if self.count else None
        if counters:
            counters.samples = x.shape[0]
        spike_counts, outputs = {}, {}
        self._totals: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
        for node in self.graph.nodes.values():
            inputs = [env[i] for i in node.inputs] if node.inputs else [x.to(self.device)]
            try:
                out = KERNELS[type(node.op)](self, node, inputs, counters)
            except DeployError:
                raise
            except Exception as exc:  # name the node, as torch.fx's Interpreter does
                raise RuntimeError(f"while executing {node.name} ({node.op.type}): {exc}") from exc
            env[node.name] = out
            if isinstance(node.op, (LIF, LoihiLIF, OrPool)):
                counts = out.flatten(2).sum(2)
                spike_counts[node.name] = counts.round().to(torch.int64).cpu()
                if counters:
                    counters.add(node.name, "spikes", counts.sum(1).cpu())
            if node.name in self.record:
                outputs[node.name] = out.cpu() if node.op.type != "Head" else out[0].cpu()
            for i in node.inputs:  # free buffers nobody reads any more
                if self.last_use.get(i) == node.name:
                    del env[i]
        logits, int_logits = env[self.graph.output.name]
        return SimResult(logits=logits.float().cpu(), predictions=logits.argmax(1).cpu(), spike_counts=spike_counts,
                         counters=counters, outputs=outputs,
                         int_logits=None if int_logits is None else int_logits.cpu())


# -- preparation: per-node constants on the device ----------------------------------------------------------------
def _synapse_dtype(sim: Simulator, node: Node) -> torch.dtype:
    """float32 when every partial sum of this integer synapse provably stays below 2**24, else float64."""
    if not sim.quantized:
        return torch.float64
    w = np.abs(node.op.weight.astype(np.float64)).reshape(node.op.weight.shape[0], -1).sum(1).max()
    return torch.float32 if w * sim.bounds[node.inputs[0]] < EXACT_FP32 else torch.float64


def _coverage(in_shape, out_hw, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """``[H, W]``: how many output windows cover each input position (fan-out per input channel and kernel)."""
    _, h, w = in_shape
    ones = torch.ones(1, 1, *out_hw, dtype=torch.float64)
    output_padding = tuple(size - ((o - 1) * stride - 2 * padding + kernel) for size, o in zip((h, w), out_hw))
    cover = F.conv_transpose2d(ones, torch.ones(1, 1, kernel, kernel, dtype=torch.float64), stride=stride,
                               padding=padding, output_padding=output_padding)
    return cover[0, 0]


def prepare_conv(sim: Simulator, node: Node) -> dict:
    op = node.op
    dtype = _synapse_dtype(sim, node)
    in_shape = sim.graph.nodes[node.inputs[0]].shape
    fanout = _coverage(in_shape, node.shape[1:], op.weight.shape[-1], op.stride, op.padding) * op.weight.shape[0]
    return {"w": sim.tensor(op.weight, dtype), "b": None if op.bias is None else sim.tensor(op.bias, dtype),
            "dtype": dtype, "fanout": fanout.to(sim.device, sim.float_dtype),
            "macs": int(np.prod(node.shape)) * int(np.prod(op.weight.shape[1:])),
            "analog_input": isinstance(sim.graph.nodes[node.inputs[0]].op, Input)
            and sim.graph.nodes[node.inputs[0]].op.kind == "image"}


def prepare_dense(sim: Simulator, node: Node) -> dict:
    op = node.op
    dtype = _synapse_dtype(sim, node)
    return {"wt": sim.tensor(op.weight.T, dtype), "b": None if op.bias is None else sim.tensor(op.bias, dtype),
            "dtype": dtype, "macs": int(np.prod(node.shape)) * op.weight.shape[1]}


def prepare_lif(sim: Simulator, node: Node) -> dict:
    op = node.op
    if isinstance(op, LIF):
        return {"decay": 1.0 - 1.0 / op.tau, "threshold": op.threshold}
    k_u, k_v = DECAY_UNITY - (op.du + 1), DECAY_UNITY - op.dv
    # float32 is exact when the decay multiplies by 0 or a power of two; other decays need float64
    exact32 = all(k == 0 or (k & (k - 1)) == 0 for k in (k_u, k_v))
    dtype = torch.float32 if exact32 else torch.float64
    channels = node.shape[0]
    bias = op.effective_bias.astype(np.float64).reshape(-1)
    bias = np.broadcast_to(bias, (channels,)).copy()
    # tokens are [T, B, N, C] (bias on the last axis); images [T, B, C, H, W] (bias on axis 2)
    shape = (channels,) if len(node.shape) == 2 else (channels, 1, 1)
    return {"k_u": k_u / DECAY_UNITY, "k_v": k_v / DECAY_UNITY, "dtype": dtype,
            "bias": sim.tensor(bias.reshape(shape), dtype), "vth": float(op.vth << ACT_SHIFT)}


def prepare_pool(sim: Simulator, node: Node) -> dict:
    op = node.op
    cover = _coverage(sim.graph.nodes[node.inputs[0]].shape, node.shape[1:], op.kernel, op.stride, op.padding)
    return {"fanout": cover.to(sim.device, sim.float_dtype)}


def prepare_head(sim: Simulator, node: Node) -> dict:
    op = node.op
    return {"wt": sim.tensor(op.weight.T, torch.float64), "b": sim.tensor(op.bias, torch.float64)}


# -- kernels: (sim, node, inputs, counters) -> output ---------------------------------------------------------------
def run_input(sim: Simulator, node: Node, inputs, counters):
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
    return x.to(sim.float_dtype).unsqueeze(0).expand(sim.graph.config.T, *x.shape)


def _saturate24(a: torch.Tensor) -> torch.Tensor:
    """Loihi's 24-bit dendritic accumulator saturates (lava's Conv model clamps its output the same way)."""
    return a.clamp_(-STATE_MAX, STATE_MAX - 1)


def _shift(a: torch.Tensor, exp: int) -> torch.Tensor:
    """Loihi's ``a << exp`` (arithmetic ``>>`` for a negative exponent) on exact integers held in floats, in place."""
    return a.mul_(2.0**exp) if exp >= 0 else a.div_(2.0 ** (-exp)).floor_()


def _fanout_sum(spatial: torch.Tensor, fanout: torch.Tensor) -> torch.Tensor:
    """Per step: sum of input value x fan-out; image fan-out maps depend on (y, x) only, so the channel-summed
    input map ``[T, H, W]`` is enough."""
    return (spatial * fanout).reshape(spatial.shape[0], -1).sum(1)


def _count_synapse(sim, node, x, drive, counters, fanout, macs, analog):
    in_value, events, spatial = sim.input_totals(node.inputs[0], x)
    elems = x[0, 0].numel()
    counters.add(node.name, "in_events", events.cpu())
    counters.add(node.name, "dense_macs", macs * x.shape[1])
    if analog:  # the analog (8-bit) image is multiplied, not accumulated: count MACs, no SOPs
        counters.add(node.name, "macs", macs * x.shape[1])
    else:
        counters.add(node.name, "in_value", in_value.cpu())
        counters.add(node.name, "sops", (in_value * fanout if isinstance(fanout, float)
                                         else _fanout_sum(spatial, fanout)).cpu())
        counters.add(node.name, "sops_paper", (in_value / elems * macs).cpu())
    if not sim.quantized:  # calibration reads it; in the integer graph the neuron's max |u| is 64 max |a|
        counters.maximum(node.name, "max_abs_a", float(_abs_max(drive)) if drive.numel() else 0.0)


def run_conv(sim: Simulator, node: Node, inputs, counters):
    p, op, x = sim.params[node.name], node.op, inputs[0]
    steps, batch = x.shape[:2]
    drive = F.conv2d(x.reshape(steps * batch, *x.shape[2:]).to(p["dtype"]), p["w"], None, op.stride, op.padding)
    drive = drive.reshape(steps, batch, *drive.shape[1:])
    if sim.quantized:
        drive = _saturate24(_shift(drive, op.weight_exp))
    if counters:
        _count_synapse(sim, node, x, drive, counters, p["fanout"], p["macs"], p["analog_input"])
    if p["b"] is not None:
        drive = drive + p["b"].reshape(-1, 1, 1)
    return drive.to(sim.float_dtype)


def run_dense(sim: Simulator, node: Node, inputs, counters):
    p, op, x = sim.params[node.name], node.op, inputs[0]
    drive = torch.matmul(x.to(p["dtype"]), p["wt"])  # [T, B, N, C_in] @ [C_in, C_out]
    if sim.quantized:
        drive = _saturate24(_shift(drive, op.weight_exp))
    if counters:
        _count_synapse(sim, node, x, drive, counters, float(op.weight.shape[0]), p["macs"], False)
    if p["b"] is not None:
        drive = drive + p["b"]
    return drive.to(sim.float_dtype)


def run_batchnorm(sim: Simulator, node: Node, inputs, counters):
    x = inputs[0]
    shape = (-1,) if x.ndim == 4 else (-1, 1, 1)  # tokens carry channels last
    scale, shift = (sim.tensor(a).reshape(shape) for a in (node.op.scale, node.op.shift))
    return x * scale + shift


def _abs_max(x: torch.Tensor) -> torch.Tensor:
    lo, hi = torch.aminmax(x)
    return torch.maximum(hi, -lo)


def run_lif(sim: Simulator, node: Node, inputs, counters):
    p, x = sim.params[node.name], inputs[0]
    out = torch.empty_like(x)
    v = torch.zeros_like(x[0])
    s = torch.empty(v.shape, dtype=torch.bool, device=v.device)
    max_v = torch.zeros((), dtype=x.dtype, device=x.device)
    for t in range(x.shape[0]):  # in place: fresh large tensors each step cost more than the arithmetic
        v.mul_(p["decay"]).add_(x[t])
        torch.ge(v, p["threshold"], out=s)
        if counters:
            max_v = torch.maximum(max_v, _abs_max(v))
        out[t].copy_(s)
        v.mul_(s.logical_not_())  # reset to 0 where it fired (4x cheaper than masked_fill_)
    if counters:
        _count_neurons(node, out, counters)
        counters.maximum(node.name, "max_abs_v", float(max_v))
    return out


def _decay(x: torch.Tensor, k: float) -> torch.Tensor:
    """Loihi's ``sign(x) * (|x * k'| >> 12)`` with k = k' / 4096: truncation toward zero."""
    return torch.trunc(x * k) if k else torch.zeros_like(x)


def _wrap24(u: torch.Tensor) -> torch.Tensor:
    """lava's 24-bit wrap of u (values just past +-2**23 come back around), written as lava writes it."""
    wrapped = torch.where(u > STATE_MAX, u - 2 * STATE_MAX, u)
    return torch.where(wrapped <= -STATE_MAX, u + 2 * STATE_MAX, wrapped)


def run_loihi_lif(sim: Simulator, node: Node, inputs, counters):
    p = sim.params[node.name]
    a = inputs[0].to(p["dtype"])
    # the drive buffer is reused for the output spikes when nobody else reads it (allocations cost page faults)
    scaled = (a if sim.owns(node) and a is inputs[0] else a.clone()).mul_(2.0**ACT_SHIFT)
    max_a = float(_abs_max(scaled)) if scaled.numel() else 0.0
    bias_max = float(p["bias"].abs().max())
    # Wrap and clamp change nothing while |u| <= 2**23 and |v| stays below 2**23 - 1: check once per layer (|v| is
    # at most sum_k (|u| + |bias|) / 2**k < 2 (|u| + |bias|)), so the common case runs the plain recurrence.
    current_memory = p["k_u"] != 0
    plain = not current_memory and max_a <= STATE_MAX and 2 * (max_a + bias_max) < STATE_MAX - 1
    out = scaled  # step t's spikes overwrite step t's drive once it is used
    u = torch.zeros_like(a[0])
    v = torch.zeros_like(a[0])
    s = torch.empty(v.shape, dtype=torch.bool, device=v.device)
    max_u = torch.zeros((), dtype=a.dtype, device=a.device)
    max_v = torch.zeros_like(max_u)
    if plain:
        drive = scaled.add_(p["bias"])  # u = a << 6 each step (du = 4095: no current memory), plus the bias
        for t in range(a.shape[0]):  # in place: fresh large tensors each step cost more than the arithmetic
            v.mul_(p["k_v"]).trunc_().add_(drive[t])
            torch.gt(v, p["vth"], out=s)
            if counters:
                max_v = torch.maximum(max_v, _abs_max(v))
            out[t].copy_(s)
            v.mul_(s.logical_not_())
        max_u = torch.tensor(max_a)
    else:
        for t in range(a.shape[0]):
            u = _wrap24(_decay(u, p["k_u"]) + scaled[t])
            v = (_decay(v, p["k_v"]) + u + p["bias"]).clamp_(-(STATE_MAX - 1), STATE_MAX - 1)
            torch.gt(v, p["vth"], out=s)
            if counters:
                max_u = torch.maximum(max_u, _abs_max(u))
                max_v = torch.maximum(max_v, _abs_max(v))
            out[t].copy_(s)
            v.mul_(s.logical_not_())
    if counters:
        _count_neurons(node, out, counters)
        counters.maximum(node.name, "max_abs_u", float(max_u))
        counters.maximum(node.name, "max_abs_v", float(max_v))
    return out.to(sim.float_dtype)


def _count_neurons(node: Node, out: torch.Tensor, counters: Counters) -> None:
    counters.add(node.name, "neuron_updates", out[0].numel())  # "spikes" comes from run()'s spike counts


def run_pool(sim: Simulator, node: Node, inputs, counters):
    op, x = node.op, inputs[0]
    steps, batch = x.shape[:2]
    y = F.max_pool2d(x.reshape(steps * batch, *x.shape[2:]), op.kernel, op.stride, op.padding)
    y = y.reshape(steps, batch, *y.shape[1:])
    if counters:
        _, events, spatial = sim.input_totals(node.inputs[0], x)
        counters.add(node.name, "in_events", events.cpu())
        counters.add(node.name, "sops", _fanout_sum(spatial, sim.params[node.name]["fanout"]).cpu())
        _count_neurons(node, y, counters)
    return y


def run_add(sim: Simulator, node: Node, inputs, counters):
    if counters:
        counters.add(node.name, "adds", sum(sim.input_totals(i, x)[1] for i, x in zip(node.inputs, inputs)).cpu())
    out = inputs[0]
    for x in inputs[1:]:
        out = out + x
    return out


def run_flatten(sim: Simulator, node: Node, inputs, counters):
    x = inputs[0]
    return x.flatten(3).transpose(-1, -2).contiguous()  # [T, B, C, H, W] -> [T, B, N, C]


def attention_inner(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, order: str) -> torch.Tensor:
    """The first product of the chosen order on binary [T, B, heads, N, d]: Q Kᵀ (qk_v) or Kᵀ V (q_kv)."""
    return q @ k.transpose(-2, -1) if order == "qk_v" else k.transpose(-2, -1) @ v


def attention_counts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, inner: torch.Tensor,
                     order: str) -> dict[str, torch.Tensor]:
    """Per-step ANDs and additions of the spike-driven attention (``inner`` from ``attention_inner``).

    qk_v: S = popcount(q_i AND k_j) (N²d ANDs, sum(S) popcount additions), then M_ic = sum_j S_ij v_jc as additions
    gated by v's spikes: one addition per (i, j, c) with S_ij > 0 and v_jc = 1.
    q_kv: R = popcount(k_c AND v_c') over tokens (N d² ANDs, sum(R) additions), then M_ic' = sum_c q_ic R_cc' gated
    by q's spikes: one addition per (i, c, c') with q_ic = 1 and R_cc' > 0.
    """
    steps = q.shape[0]
    n, d = q.shape[-2], q.shape[-1]
    heads = q.shape[1] * q.shape[2]
    if order == "qk_v":
        ands = heads * n * n * d
        gated = ((inner > 0).to(v.dtype).sum(-2) * v.sum(-1)).reshape(steps, -1).sum(1)  # sum_j nnz_i(S_ij)|v_j|
    else:
        ands = heads * n * d * d
        gated = (q.sum(-2) * (inner > 0).to(q.dtype).sum(-1)).reshape(steps, -1).sum(1)  # sum_c |q_c| nnz(R_c)
    popcount = inner.reshape(steps, -1).sum(1)
    return {"ands": torch.full((steps,), float(ands)), "adds": (popcount + gated).cpu()}


def run_attention(sim: Simulator, node: Node, inputs, counters):
    op = node.op
    steps, batch, n, c = inputs[0].shape
    q, k, v = (x.reshape(steps, batch, n, op.num_heads, op.head_dim).transpose(2, 3).to(torch.float32)
               for x in inputs)
    inner = attention_inner(q, k, v, op.order)
    m = inner @ v if op.order == "qk_v" else q @ inner  # exact: values <= N*d*N < 2**24
    m = m.transpose(2, 3).reshape(steps, batch, n, c).to(sim.float_dtype)
    if counters:
        counts = attention_counts(q, k, v, inner, op.order)
        counters.add(node.name, "in_events", sum(sim.input_totals(i, x)[1] for i, x in zip(node.inputs, inputs)).cpu())
        counters.add(node.name, "ands", counts["ands"])
        counters.add(node.name, "adds", counts["adds"])
        per_head = 2 * n * n * op.head_dim if op.order == "qk_v" else 2 * n * op.head_dim**2
        counters.add(node.name, "dense_macs", per_head * op.num_heads * batch)
        if not sim.quantized:  # calibration reads it (max |M|, the integer before any scale or shift)
            counters.maximum(node.name, "max_abs_a", float(_abs_max(m)))
    if op.rewritten:
        return _shift(m, op.out_shift) if sim.quantized else m
    return m * op.scale


def run_head(sim: Simulator, node: Node, inputs, counters):
    p, op, x = sim.params[node.name], node.op, inputs[0].to(torch.float64)
    steps, batch, n, c = x.shape
    if counters:
        events = sim.input_totals(node.inputs[0], inputs[0])[1].cpu()
        counters.add(node.name, "in_events", events)
        counters.add(node.name, "adds", events)  # accumulate the counts over N and T
        macs = np.zeros(steps)
        macs[-1] = op.weight.size * batch  # one float/integer layer per inference, after the last step
        counters.add(node.name, "macs", macs)
        counters.add(node.name, "dense_macs", macs)
    if sim.quantized:
        counts = x.sum(dim=(0, 2))  # integer sums; the 1/(N*T) of the mean is folded into the bias
        int_logits = counts @ p["wt"] + p["b"]
        return int_logits * op.scale, int_logits
    return x.mean(2).mean(0) @ p["wt"] + p["b"], None


KERNELS = {Input: run_input, Conv2d: run_conv, Dense: run_dense, BatchNorm: run_batchnorm, LIF: run_lif,
           LoihiLIF: run_loihi_lif, OrPool: run_pool, Add: run_add, Flatten: run_flatten,
           SpikingAttention: run_attention, Head: run_head}
PREPARE = {Conv2d: prepare_conv, Dense: prepare_dense, LIF: prepare_lif, LoihiLIF: prepare_lif,
           OrPool: prepare_pool, Head: prepare_head}
