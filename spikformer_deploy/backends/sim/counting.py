"""Operation counters and calibration ranges as an observer of the simulator (see ``Observer``): per node, per time
step, summed over samples (``counters.COUNTER_DOC``), and the largest |drive| and |state| (``MAXIMA_DOC``).

One entry per op type in ``COUNTS``; each reads the node's inputs and output after its kernel ran, plus the
intermediates the kernel handed over (the drive before its bias, the attention's first product). Every count is
checked against an independent brute-force count from the original model's activations (tests/backends).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...counters import Counters
from ...ir import Node, OpTable
from ...ir.ops import (Add, AndTokenSum, AttentionAnd, AttentionCount, AttentionProduct, AttentionSum, ChannelMask,
                       Conv2d, Dense, DepthwiseConv2d, Head, Input, MaxPool, OrPool, SpikingAttention, StreamSum,
                       TokenMean)
from . import cpu_kernels
from .simulator import Observer, Simulator, abs_max, per_sample_sum


def coverage(in_shape, out_hw, kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int]) -> torch.Tensor:
    """``[H, W]``: how many output windows cover each input position (fan-out per input channel and kernel)."""
    ones = torch.ones(1, 1, *out_hw, dtype=torch.float64)
    output_padding = tuple(size - ((o - 1) * s - 2 * p + k)
                           for size, o, k, s, p in zip(in_shape[1:], out_hw, kernel, stride, padding))
    cover = F.conv_transpose2d(ones, torch.ones(1, 1, *kernel, dtype=torch.float64), stride=stride,
                               padding=padding, output_padding=output_padding)
    return cover[0, 0]


class CountingObserver(Observer):
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.bounds = sim.graph.value_bounds()
        self.graded = {name: sim.graph.on_stream(name) for name in sim.graph.nodes}
        self.fanout: dict[str, torch.Tensor | float] = {}  # per input position (images) or per event (tokens)
        # synapses: every input element times its fan-out per sample and step (dense without the padding taps, as
        # NeuroBench counts it), fixed by the shapes
        self.in_bounds: dict[str, float] = {}
        for node in sim.graph.nodes.values():
            op, src = node.op, node.inputs[0] if node.inputs else None
            if isinstance(op, Conv2d):
                # each input channel reaches C_out / groups output channels
                cover = coverage(sim.graph.nodes[src].shape, node.shape[1:], op.weight.shape[-2:], op.stride,
                                 op.padding) * (op.weight.shape[0] // op.groups)
                self.in_bounds[node.name] = float(cover.sum()) * sim.graph.nodes[src].shape[0]
            elif isinstance(op, (OrPool, MaxPool)):
                cover = coverage(sim.graph.nodes[src].shape, node.shape[1:], (op.kernel,) * 2, (op.stride,) * 2,
                                 (op.padding,) * 2)
            elif isinstance(op, Dense):
                self.fanout[node.name] = float(op.weight.shape[0])
                self.in_bounds[node.name] = self.fanout[node.name] * float(np.prod(sim.graph.nodes[src].shape))
                continue
            else:
                continue
            self.fanout[node.name] = cover.to(sim.device, sim.float_dtype)

    def start(self, steps: int, batch: int) -> None:
        self.counters = Counters(steps)
        self.counters.samples = batch
        self.batch = batch
        self.totals: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
        self.maxima: dict[tuple[str, str], torch.Tensor] = {}

    def finish(self) -> Counters:
        for (node, key), value in self.maxima.items():
            self.counters.maximum(node, f"max_abs_{key}", float(value))
        return self.counters

    def _maximum(self, node: Node, key: str, value: torch.Tensor) -> None:
        if value.numel():
            m = abs_max(value)
            old = self.maxima.get((node.name, key))
            self.maxima[node.name, key] = m if old is None else torch.maximum(old, m)
        else:
            self.maxima.setdefault((node.name, key), torch.zeros(()))

    def state(self, node: Node, key: str, value: torch.Tensor) -> None:
        self._maximum(node, key, value)

    def intermediate(self, node: Node, **tensors: torch.Tensor) -> None:
        if "drive" in tensors and not self.sim.quantized:
            # calibration reads it; in the integer graph the neuron reports |u| = 64 |a| instead
            self._maximum(node, "a", tensors["drive"])
        if "inner" in tensors:
            self.attention(node, **tensors)

    def done(self, node: Node, inputs: list[torch.Tensor], out: torch.Tensor) -> None:
        if node.op.spiking:
            self.counters.add(node.name, "spikes", per_sample_sum(out).sum(1).cpu())
            self.counters.add(node.name, "neuron_updates", out[0].numel())
        COUNTS(node)(self, node, inputs, out)

    def input_totals(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per step: (sum of values, number of non-zero elements, image map summed over samples and channels
        ``[T, H, W]`` or None) of node ``name``'s output, once per run (q, k and v read the same residual stream).
        Binary outputs need no count of their own: their events are their sum."""
        if name not in self.totals:
            binary = self.bounds[name] == 1
            if x.dtype == torch.uint8:  # spikes from the CPU kernels: their sums per position, back in float
                sums, nonzero = (s.to(self.sim.float_dtype) for s in cpu_kernels.position_sums(x))
                spatial = sums.sum(1).view(x.shape[0], *x.shape[-2:]) if x.ndim == 5 else None
                value = sums.sum((1, 2))
                events = value if binary else nonzero.sum((1, 2))
            else:
                spatial = x.sum(dim=(1, 2)) if x.ndim == 5 else None
                value = (spatial if spatial is not None else x).reshape(x.shape[0], -1).sum(1)
                events = value if binary else torch.count_nonzero(x.reshape(x.shape[0], -1), dim=1).to(value.dtype)
            self.totals[name] = (value, events, spatial)
        return self.totals[name]

    def events_in(self, node: Node, inputs: list[torch.Tensor]) -> torch.Tensor:
        return sum(self.input_totals(i, x)[1] for i, x in zip(node.inputs, inputs)).cpu()

    def synapse(self, node: Node, inputs, out) -> None:
        x, fanout = inputs[0], self.fanout[node.name]
        in_value, events, spatial = self.input_totals(node.inputs[0], x)
        macs = int(np.prod(node.shape)) * int(np.prod(node.op.weight.shape[1:]))  # per sample and step
        c = self.counters
        c.add(node.name, "in_events", events.cpu())
        c.add(node.name, "dense_macs", macs * self.batch)
        c.add(node.name, "in_bounds_macs", self.in_bounds[node.name] * self.batch)
        source = self.sim.graph.nodes[node.inputs[0]].op
        image, graded = isinstance(source, Input) and source.kind == "image", self.graded[node.inputs[0]]
        if image or graded:
            # real values: one synaptic event per non-zero input and synapse
            nonzero = (x != 0).to(self.sim.float_dtype)
            event_fanout = (nonzero.reshape(x.shape[0], -1).sum(1) * fanout if isinstance(fanout, float) else
                            _fanout_sum(nonzero.sum(dim=(1, 2)), fanout))
        if image:
            c.add(node.name, "macs", macs * self.batch)  # the analog image is multiplied, not accumulated: no SOPs
            c.add(node.name, "event_fanout", event_fanout.cpu())
            return
        c.add(node.name, "in_value", in_value.cpu())
        if graded:  # a relay's graded spikes (signed): counted by event, not by value
            sops = event_fanout
        else:
            sops = in_value * fanout if isinstance(fanout, float) else _fanout_sum(spatial, fanout)
        c.add(node.name, "sops", sops.cpu())
        c.add(node.name, "sops_paper", (in_value / x[0, 0].numel() * macs).cpu())

    def pool(self, node: Node, inputs, out) -> None:
        _, events, spatial = self.input_totals(node.inputs[0], inputs[0])
        self.counters.add(node.name, "in_events", events.cpu())
        self.counters.add(node.name, "sops", _fanout_sum(spatial, self.fanout[node.name]).cpu())

    def add(self, node: Node, inputs, out) -> None:
        self.counters.add(node.name, "adds", self.events_in(node, inputs))

    def attention(self, node: Node, q, k, v, inner) -> None:
        """Per-step ANDs and additions of the spike-driven attention on binary [T, B, heads, N, d].

        qk_v: S = popcount(q_i AND k_j) (N²d ANDs, sum(S) popcount additions), then M_ic = sum_j S_ij v_jc as
        additions gated by v's spikes: one addition per (i, j, c) with S_ij > 0 and v_jc = 1.
        q_kv: R = popcount(k_c AND v_c') over tokens (N d² ANDs, sum(R) additions), then M_ic' = sum_c q_ic R_cc'
        gated by q's spikes: one addition per (i, c, c') with q_ic = 1 and R_cc' > 0.
        """
        steps, n, d = q.shape[0], q.shape[-2], q.shape[-1]
        heads = q.shape[1] * q.shape[2]
        if node.op.order == "qk_v":
            ands = heads * n * n * d
            gated = ((inner > 0).to(v.dtype).sum(-2) * v.sum(-1)).reshape(steps, -1).sum(1)  # sum_j nnz_i(S_ij)|v_j|
        else:
            ands = heads * n * d * d
            gated = (q.sum(-2) * (inner > 0).to(q.dtype).sum(-1)).reshape(steps, -1).sum(1)  # sum_c |q_c| nnz(R_c)
        self.counters.add(node.name, "ands", np.full(steps, float(ands)))
        self.counters.add(node.name, "adds", (inner.reshape(steps, -1).sum(1) + gated).cpu())
        per_head = 2 * n * n * d if node.op.order == "qk_v" else 2 * n * d**2
        self.counters.add(node.name, "dense_macs", per_head * node.op.num_heads * self.batch)

    def attention_events(self, node: Node, inputs, out) -> None:
        self.counters.add(node.name, "in_events", self.events_in(node, inputs))

    def stream_sum(self, node: Node, inputs, out) -> None:
        """Graded relay neurons: one accumulation per non-zero input, one update per neuron and step, one graded
        spike per non-zero output."""
        c = self.counters
        c.add(node.name, "in_events", self.events_in(node, inputs))
        c.add(node.name, "adds", self.events_in(node, inputs))
        c.add(node.name, "neuron_updates", out[0].numel())
        c.add(node.name, "spikes", torch.count_nonzero(out.reshape(out.shape[0], -1), dim=1).cpu())

    def max_pool(self, node: Node, inputs, out) -> None:
        """A comparison per window tap beyond the first (dense: graded values), counted as additions."""
        taps = float(self.fanout[node.name].sum()) * node.shape[0] * self.batch
        self.counters.add(node.name, "in_events", self.events_in(node, inputs))
        self.counters.add(node.name, "adds", taps - out[0].numel())

    def and_token_sum(self, node: Node, inputs, out) -> None:
        """Per channel and token one AND of k and v, then the popcount: one addition per token where both spike."""
        k, v = inputs
        elements = k[0].numel()  # C x N x B
        c = self.counters
        c.add(node.name, "in_events", self.events_in(node, inputs))
        c.add(node.name, "ands", elements)
        c.add(node.name, "adds", (k.to(torch.float64) * v.to(torch.float64)).reshape(k.shape[0], -1).sum(1).cpu())
        c.add(node.name, "dense_macs", elements)

    def channel_mask(self, node: Node, inputs, out) -> None:
        """One AND per element of q with its channel's spike."""
        self.counters.add(node.name, "in_events", self.events_in(node, inputs))
        self.counters.add(node.name, "ands", out[0].numel())
        self.counters.add(node.name, "dense_macs", out[0].numel())

    def token_mean(self, node: Node, inputs, out) -> None:
        """One accumulation per non-zero input."""
        events = self.events_in(node, inputs)
        self.counters.add(node.name, "in_events", events)
        self.counters.add(node.name, "adds", events)
        self.counters.add(node.name, "dense_macs", inputs[0][0].numel())

    def head(self, node: Node, inputs, out) -> None:
        events = self.events_in(node, inputs)
        self.counters.add(node.name, "in_events", events)
        self.counters.add(node.name, "adds", events)  # accumulate the counts over N and T
        macs = np.zeros(inputs[0].shape[0])
        macs[-1] = node.op.weight.size * self.batch  # one float/integer layer per inference, after the last step
        self.counters.add(node.name, "macs", macs)
        self.counters.add(node.name, "dense_macs", macs)
        pooled = np.zeros(inputs[0].shape[0])
        pooled[-1] = float(torch.count_nonzero(inputs[0].sum(dim=(0, 2))))  # tokens [T, B, N, C]: the pooled [B, C]
        self.counters.add(node.name, "pooled_nonzero", pooled)

    def attention_stage(self, node: Node, inputs, out) -> None:
        """The attention on neurocores (``AttentionStage``): per input, its non-zero elements times their fan-out
        (``Wiring.fan_out``: every synapse carries one event, binary or graded); neuron groups update every
        neuron each step and send one (graded) spike per non-zero output; the count and sum synapses are additions
        (the popcounts and spike-gated sums of the embedded attention)."""
        wiring = node.op.wiring(inputs[-1].shape[2])
        events = [self.input_totals(i, x)[1].cpu() for i, x in zip(node.inputs, inputs)]
        c = self.counters
        c.add(node.name, "in_events", sum(events))
        c.add(node.name, "sops", sum(e * fan for e, fan in zip(events, wiring.fan_out)))
        if isinstance(node.op, (AttentionCount, AttentionSum)):
            c.add(node.name, "adds", events[0])
        if node.op.neuron_group and not node.op.spiking:  # graded neurons (binary ones are counted in done)
            c.add(node.name, "neuron_updates", out[0].numel())
            c.add(node.name, "spikes", torch.count_nonzero(out.reshape(out.shape[0], -1), dim=1).cpu())

    def nothing(self, node: Node, inputs, out) -> None:
        """No operation of its own to count (a neuron's spikes and updates are counted in ``done``)."""


def _fanout_sum(spatial: torch.Tensor, fanout: torch.Tensor) -> torch.Tensor:
    """Per step: sum of input value x fan-out; image fan-out maps depend on (y, x) only, so the channel-summed
    input map ``[T, H, W]`` is enough."""
    return (spatial * fanout).reshape(spatial.shape[0], -1).sum(1)


COUNTS = OpTable("the operation counters", {
    DepthwiseConv2d: CountingObserver.synapse, OrPool: CountingObserver.pool, Add: CountingObserver.add,
    SpikingAttention: CountingObserver.attention_events,
    StreamSum: CountingObserver.stream_sum, MaxPool: CountingObserver.max_pool,
    AndTokenSum: CountingObserver.and_token_sum, ChannelMask: CountingObserver.channel_mask,
    TokenMean: CountingObserver.token_mean, Head: CountingObserver.head,
    AttentionAnd: CountingObserver.attention_stage, AttentionCount: CountingObserver.attention_stage,
    AttentionProduct: CountingObserver.attention_stage, AttentionSum: CountingObserver.attention_stage,
}, by_traits=lambda cls: CountingObserver.synapse if cls.synapse else CountingObserver.nothing)
