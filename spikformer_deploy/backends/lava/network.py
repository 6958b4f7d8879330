"""A lava-nc process graph from an artifact directory, run on ``Loihi2SimCfg(select_tag="fixed_pt")``.

Mapping of the integer IR (Lava layout ``(W, H, C)``; tokens stay on their grid, token n = h * W + w):
- ``Input`` -> ``io.source.RingBuffer`` of graded values (the 8-bit image each step, or event counts);
- ``Conv2d`` -> ``conv.Conv`` (kernel flipped and transposed to (C_out, W, H, C_in)); ``DepthwiseConv2d`` -> the
  same with ``groups = C``; ``Dense`` -> 1x1 ``Conv``.
  lava's Conv model ignores ``weight_exp``, so ``2**weight_exp`` (>= 0, see quantize) is folded into the weights;
  graded inputs use ``num_message_bits = 24``;
- ``LoihiLIF`` -> ``lif.LIF`` with its vth, du, dv, per-neuron bias mantissa and exponent;
- ``OrPool`` -> depthwise ``Conv`` of ones + an OR neuron (LIF, du = dv = 4095, vth = 0: fires iff the sum > 0);
- ``Add``, ``StreamSum`` -> a depthwise identity ``Conv`` whose InPort sums the (delay-balanced) inputs: graded
  spikes;
- ``SpikingAttention`` -> ``SpikingSelfAttention`` (attention.py: a CPU model, no Loihi 2 compiler places it);
  after ``lower_attention``, its stages -> ``sparse.Sparse`` synapses into ``lif.LIF`` (AND), ``graded.GradedVec``
  (counts) and ``prodneuron.ProdNeuron`` (products), standard processes all; ``MaxPool``, ``AndTokenSum``, ``ChannelMask``,
  ``TokenMean`` -> the embedded-core processes of embedded.py (no synapse hop, as the attention);
- ``Head`` -> on the host: integer sums of the last residual stream over tokens and the T steps, then ``w c + b``.
Every synapse hop delays by one step (``Graph.pipeline_depths``, the one delay rule the report uses too), so a
node's output for input i, step t appears at Lava step ``depth + i * T + t``; the builder counts the hops it actually
builds and checks them against the rule. The shallower input of each sum passes through identity Convs until
depths match. A LIF
integrates its bias from the first step on, before its data arrives: ``io.reset.Reset`` zeroes each neuron's ``v``
just before its first real step of every input (period T). Garbage from those warm-up steps reaches the next layer
only before that layer's own reset, so the result equals the layer-synchronous simulator spike for spike.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...artifact import load_artifact
from ...errors import DeployError, GraphError
from ...ir import Graph, Node, OpTable
from ...ir.ops import (LIF, Add, AndTokenSum, AttentionAnd, AttentionCount, AttentionProduct, AttentionSum, BatchNorm, ChannelMask, Conv2d, Dense, DepthwiseConv2d, Flatten, Head,
                       Input, LoihiLIF,
                       MaxPool, OrPool, SpikingAttention, StreamSum, TokenMean, Unflatten, Vectorize)
from ..lava_io import Recorder, attach_recorder, read_aligned, run_fixed_pt, source_data

GRADED_BITS = 24


@dataclass
class LavaResult:
    outputs: dict[str, np.ndarray]  # node -> [T, B, ...] in the simulator's layout (images CHW, tokens [N, C])
    int_logits: np.ndarray  # [B, classes]
    predictions: np.ndarray  # [B]
    steps: int
    processes: int
    seconds: float
    process_classes: dict[str, dict] = field(default_factory=dict)  # see ``process_classes``


STANDARD_PACKAGE = "lava.proc."  # lava-nc's own process library: what a Loihi 2 compiler knows how to place


def process_classes(network: list, recorders: int) -> dict[str, dict]:
    """The classes of a built network's processes with their counts and kind: ``standard`` (a lava.proc process),
    ``custom`` (defined here: no Loihi 2 compiler places it) or ``host I/O`` (the recorders this run attaches, not
    part of the network)."""
    counts = Counter(f"{type(p).__module__}.{type(p).__name__}" for p in network)
    out = {name: {"count": n, "kind": "standard" if name.startswith(STANDARD_PACKAGE) else "custom"}
           for name, n in sorted(counts.items())}
    if recorders:
        out[f"{Recorder.__module__}.{Recorder.__name__}"] = {"count": recorders, "kind": "host I/O"}
    return out


def lava_shape(graph: Graph, name: str) -> tuple[int, int, int]:
    """A node's output in Lava's (W, H, C) layout; token maps live on their image grid."""
    c, h, w = graph.grid(name)
    return (w, h, c)


class LavaNetwork:
    """Builds and runs the process graph of an integer deploy graph (one build per ``run``)."""

    def __init__(self, graph: Graph):
        if not graph.integer:
            raise GraphError(f"the Lava backend needs the integer graph of an export, this one is {graph.dialect}")
        for n in graph.having("synapse"):
            if n.op.weight_exp < 0:
                raise DeployError(f"{n.name}: weight_exp {n.op.weight_exp} < 0 cannot be folded into lava's Conv")
        for node in graph.nodes.values():
            LOWERING(node)  # every op has a lowering before anything is built
        self.graph = graph
        self.T = graph.steps
        self.depths: dict[str, int] = {}  # synapse hops counted while building (checked against the rule)

    def run(self, x: np.ndarray, record: set[str] | None = None) -> LavaResult:
        """Run inputs ``x`` (the model's input batch, float) back to back; ``record``: nodes whose spikes to return
        (default: every neuron and OR node)."""
        start = time.perf_counter()
        g, T = self.graph, self.T
        x = np.asarray(x, dtype=np.float64)
        batch = x.shape[0]
        record = record if record is not None else {n.name for n in g.having("spiking")}
        head = g.output
        builder = _Builder(g, T, batch, x)
        for node in g.nodes.values():
            LOWERING(node)(builder, node)
        if builder.depth != builder.rule:
            wrong = next(k for k in builder.rule if builder.depth.get(k) != builder.rule[k])
            raise DeployError(f"Lava graph: {wrong} arrives at step {builder.depth.get(wrong)}, the delay rule says "
                              f"{builder.rule[wrong]}")
        self.depths = dict(builder.depth)
        steps = max(builder.depth.values()) + batch * T + 1
        # the head runs on the host from the recorded stream it reads; without a head the output is recorded
        last = head.inputs[0] if isinstance(head.op, Head) else head.name
        with tempfile.TemporaryDirectory(prefix="spikformer-lava-") as tmp:
            names = sorted({*record, last})
            files = {name: attach_recorder(builder.ports[name], steps, os.path.join(tmp, f"{i}.bin"))
                     for i, name in enumerate(names)}
            run_fixed_pt(builder.source, steps)
            data = {name: read_aligned(files[name], steps, builder.depth[name], T, batch, g.nodes[name].shape)
                    for name in names}
        outputs = {name: data[name] for name in record}
        if isinstance(head.op, Head):
            counts = data[last].sum(axis=(0, 2)).astype(np.int64)  # tokens [T, B, N, C] -> [B, C]
            int_logits = counts @ head.op.weight.astype(np.int64).T + head.op.bias.astype(np.int64)
        else:  # as the simulator: the output summed over the time steps
            int_logits = data[last].reshape(T, batch, -1).sum(axis=0).astype(np.int64)
        return LavaResult(outputs, int_logits, int_logits.argmax(1), steps, len(builder.processes) + len(names),
                          time.perf_counter() - start, process_classes(builder.processes, len(names)))


class _Builder:
    """Lava processes for one run; ``ports[node]``: the OutPort carrying the node's output, ``depth[node]``: the
    synapse hops actually built up to it (the input arrives at step 1)."""

    def __init__(self, graph: Graph, T: int, batch: int, x: np.ndarray):
        self.g, self.T, self.batch, self.x = graph, T, batch, x
        self.bounds = graph.value_bounds()
        self.rule = graph.pipeline_depths()
        self.processes = []
        self.ports, self.depth = {}, {}

    def add(self, proc):
        self.processes.append(proc)
        return proc

    def conv(self, port, weight, shape, graded, stride=(1, 1), padding=(0, 0), groups=1):
        """A lava Conv; ``stride`` and ``padding`` in the IR's (h, w) order (lava's are (x, y))."""
        from lava.proc.conv.process import Conv

        proc = self.add(Conv(weight=weight.astype(np.int32), input_shape=shape, padding=tuple(padding[::-1]),
                             stride=tuple(stride[::-1]), groups=groups, num_message_bits=GRADED_BITS if graded else 0))
        port.connect(proc.s_in)
        return proc.a_out

    def neuron(self, a_port, shape, depth, vth, du=4095, dv=2048, bias_mant=None, bias_exp=0):
        from lava.proc.io.reset import Reset
        from lava.proc.lif.process import LIF as LavaLIF

        bias = np.zeros(shape, dtype=np.int32) if bias_mant is None else \
            np.broadcast_to(np.asarray(bias_mant, dtype=np.int32), shape).copy()
        lif = self.add(LavaLIF(shape=shape, du=int(du), dv=int(dv), vth=int(vth), bias_mant=bias,
                               bias_exp=int(bias_exp)))
        a_port.connect(lif.a_in)
        # zero v in the management phase of the step before this neuron's first real step, every input
        reset = self.add(Reset(reset_value=0, interval=int(self.T), offset=int((depth - 2) % self.T)))
        reset.connect_var(lif.v)
        return lif.s_out

    def delayed(self, port, shape, steps):
        """``steps`` identity depthwise Convs (one step each), graded values passing through."""
        c = shape[2]
        for _ in range(steps):
            port = self.conv(port, np.ones((c, 1, 1, 1)), shape, True, groups=c)
        return port

    def set(self, node: Node, port, depth: int) -> None:
        self.ports[node.name], self.depth[node.name] = port, depth

    # -- lowerings: one per op type (LOWERING) ---------------------------------------------------------------------
    def input(self, node: Node) -> None:
        from lava.proc.io.source import RingBuffer as Source

        # one quiet step after the last input; the ring buffer then repeats, but that reaches each layer only after
        # its last recorded step
        self.source = self.add(Source(data=source_data(node.op, self.x, self.T, self.batch * self.T + 1)))
        self.set(node, self.source.s_out, 1)

    def synapse(self, node: Node) -> None:
        op, src = node.op, node.inputs[0]
        w = op.weight.astype(np.int64) * 2**op.weight_exp
        if isinstance(op, Conv2d):
            lava_w = w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)  # true convolution, (C_out, W, H, C_in)
            args = dict(stride=op.stride, padding=op.padding, groups=op.groups)
        else:
            lava_w = w[:, None, None, :]
            args = {}
        port = self.conv(self.ports[src], lava_w, lava_shape(self.g, src), self.bounds[src] > 1, **args)
        self.set(node, port, self.depth[src] + 1)

    def lif(self, node: Node) -> None:
        op, src = node.op, node.inputs[0]
        port = self.neuron(self.ports[src], lava_shape(self.g, node.name), self.depth[src], op.vth, op.du, op.dv,
                           op.bias_mant.reshape(-1), op.bias_exp)
        self.set(node, port, self.depth[src])

    def or_pool(self, node: Node) -> None:
        op, src = node.op, node.inputs[0]
        shape = lava_shape(self.g, node.name)
        c = shape[2]
        summed = self.conv(self.ports[src], np.ones((c, op.kernel, op.kernel, 1)), lava_shape(self.g, src), False,
                           stride=(op.stride,) * 2, padding=(op.padding,) * 2, groups=c)
        depth = self.depth[src] + 1
        self.set(node, self.neuron(summed, shape, depth, vth=0, du=4095, dv=4095), depth)

    def add_relay(self, node: Node) -> None:
        from lava.proc.conv.process import Conv

        shape = lava_shape(self.g, node.name)
        target = self.rule[node.name] - 1  # every input waits for the latest one
        waits = {i: max(0, target - self.depth[i]) for i in node.inputs}
        relay_in = [self.delayed(self.ports[i], shape, waits[i]) for i in node.inputs]
        c = shape[2]
        relay = self.add(Conv(weight=np.ones((c, 1, 1, 1), dtype=np.int32), input_shape=shape, groups=c,
                              num_message_bits=GRADED_BITS))
        for port in relay_in:  # the InPort sums every connection: the residual sum, graded
            port.connect(relay.s_in)
        arrivals = {self.depth[i] + waits[i] for i in node.inputs}
        if len(arrivals) != 1:
            raise DeployError(f"{node.name}: inputs arrive at steps {sorted(arrivals)}")
        self.set(node, relay.a_out, arrivals.pop() + 1)

    def same_port(self, node: Node) -> None:
        """Flatten, Unflatten: Lava keeps the grid; tokens are its positions."""
        src = node.inputs[0]
        self.set(node, self.ports[src], self.depth[src])

    def vectorize(self, node: Node) -> None:
        """lava-dl netx's flatten: (x, y, c) -> (c, y, x) -> one vector, as a 1 x 1 map of C*H*W channels."""
        src = node.inputs[0]
        port = self.ports[src].transpose([2, 1, 0]).flatten().reshape(lava_shape(self.g, node.name))
        self.set(node, port, self.depth[src])

    def attention(self, node: Node) -> None:
        from .attention import SpikingSelfAttention

        op, (q, k, v) = node.op, node.inputs
        if not self.depth[q] == self.depth[k] == self.depth[v]:
            raise DeployError(f"{node.name}: q, k, v arrive at different steps")
        proc = self.add(SpikingSelfAttention(shape=lava_shape(self.g, node.name), num_heads=op.num_heads,
                                             head_dim=op.head_dim, order=op.order, out_shift=op.out_shift))
        for port_name, src in zip(("q", "k", "v"), node.inputs):
            self.ports[src].connect(getattr(proc, port_name))
        self.set(node, proc.a_out, self.depth[q])

    def flat(self, name: str, channel: np.ndarray, token: np.ndarray) -> np.ndarray:
        """Index of (channel, token) of node ``name`` in its flattened (W, H, C) Lava port."""
        c, h, w = self.g.grid(name)
        return ((token % w) * h + token // w) * c + channel

    def attention_stage(self, node: Node) -> None:
        """A stage of the attention on neurocores: lava Sparse synapses (attention_synapses) from each input into
        its neurons (AND: LIF; count: GradedVec; product: ProdNeuron); the sum's synapses feed attn_lif. The
        product's third operand waits for the counts (identity Convs, as a residual sum's shorter path)."""
        from lava.proc.graded.process import GradedVec
        from lava.proc.lif.process import LIF as LavaLIF
        from lava.proc.prodneuron.process import ProdNeuron
        from lava.proc.sparse.process import Sparse
        from scipy.sparse import csr_matrix

        from .attention_synapses import stage_synapses

        op, shape = node.op, lava_shape(self.g, node.name)
        latest = max(self.depth[i] for i in node.inputs)
        a_outs = []
        for src, (oc, on, ic, i_n) in zip(node.inputs, stage_synapses(op, self.g.nodes[node.inputs[-1]].shape[1])):
            src_shape = lava_shape(self.g, src)
            weights = csr_matrix((np.ones(oc.size, dtype=np.int32), (self.flat(node.name, oc, on),
                                                                     self.flat(src, ic, i_n))),
                                 shape=(int(np.prod(shape)), int(np.prod(src_shape))))
            syn = self.add(Sparse(weights=weights, num_message_bits=GRADED_BITS if self.bounds[src] > 1 else 0,
                                  weight_exp=getattr(op, "out_shift", 0)))
            self.delayed(self.ports[src], src_shape, latest - self.depth[src]).flatten().connect(syn.s_in)
            a_outs.append(syn.a_out.reshape(shape))
        if isinstance(op, AttentionSum):
            port = a_outs[0]
        elif isinstance(op, AttentionAnd):  # fires iff both inputs spiked: 2 << 6 > 1 << 6; no memory
            neuron = self.add(LavaLIF(shape=shape, du=4095, dv=4095, vth=1))
            for a in a_outs:
                a.connect(neuron.a_in)
            port = neuron.s_out
        elif isinstance(op, AttentionCount):
            neuron = self.add(GradedVec(shape=shape, vth=0))
            a_outs[0].connect(neuron.a_in)
            port = neuron.s_out
        else:
            neuron = self.add(ProdNeuron(shape=shape, vth=0))
            a_outs[0].connect(neuron.a_in1)
            a_outs[1].connect(neuron.a_in2)
            port = neuron.s_out
        self.set(node, port, latest + 1)

    def embedded(self, node: Node, proc, ports: tuple[str, ...], out: str) -> None:
        """An embedded-core process reading ``node``'s inputs on ``ports``, in the step they arrive."""
        depths = {self.depth[i] for i in node.inputs}
        if len(depths) != 1:
            raise DeployError(f"{node.name}: its inputs arrive at steps {sorted(depths)}")
        self.add(proc)
        for port_name, src in zip(ports, node.inputs):
            self.ports[src].connect(getattr(proc, port_name))
        self.set(node, getattr(proc, out), depths.pop())

    def max_pool(self, node: Node) -> None:
        from .embedded import GridMaxPool

        op = node.op
        self.embedded(node, GridMaxPool(in_shape=lava_shape(self.g, node.inputs[0]), out_shape=lava_shape(
            self.g, node.name), kernel=op.kernel, stride=op.stride, padding=op.padding), ("s_in",), "a_out")

    def and_token_sum(self, node: Node) -> None:
        from .embedded import AndTokenSum as Process

        self.embedded(node, Process(shape=lava_shape(self.g, node.inputs[0]), out_shift=node.op.out_shift),
                      ("k", "v"), "a_out")

    def channel_mask(self, node: Node) -> None:
        from .embedded import ChannelMask as Process

        self.embedded(node, Process(shape=lava_shape(self.g, node.name)), ("q", "m"), "s_out")

    def token_sum(self, node: Node) -> None:
        from .embedded import TokenSum

        self.embedded(node, TokenSum(shape=lava_shape(self.g, node.inputs[0]), shift=node.op.shift), ("s_in",),
                      "a_out")

    def host_head(self, node: Node) -> None:
        """On the host, from the recorded residual stream (``LavaNetwork.run``)."""
        self.depth[node.name] = self.depth[node.inputs[0]]


LOWERING = OpTable("the Lava backend", {
    Input: _Builder.input, Conv2d: _Builder.synapse, DepthwiseConv2d: _Builder.synapse, Dense: _Builder.synapse,
    LoihiLIF: _Builder.lif,
    OrPool: _Builder.or_pool, Add: _Builder.add_relay, StreamSum: _Builder.add_relay, Flatten: _Builder.same_port, Unflatten: _Builder.same_port, Vectorize: _Builder.vectorize,
    SpikingAttention: _Builder.attention, MaxPool: _Builder.max_pool, AndTokenSum: _Builder.and_token_sum,
    ChannelMask: _Builder.channel_mask, TokenMean: _Builder.token_sum, Head: _Builder.host_head,
    AttentionAnd: _Builder.attention_stage, AttentionCount: _Builder.attention_stage,
    AttentionProduct: _Builder.attention_stage, AttentionSum: _Builder.attention_stage,
}, unsupported={LIF: "float neurons have no Lava form; export the integer graph",
                BatchNorm: "fold it into its synapse first (fold_batchnorm)"})


def build_network(directory: Path) -> LavaNetwork:
    """The Lava network of an artifact directory (checked against its manifest first)."""
    return LavaNetwork(load_artifact(directory)[0])
