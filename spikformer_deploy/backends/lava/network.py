"""A lava-nc process graph from an artifact directory, run on ``Loihi2SimCfg(select_tag="fixed_pt")``.

Mapping of the integer IR (Lava layout ``(W, H, C)``; tokens stay on their grid, token n = h * W + w):
- ``Input`` -> ``io.source.RingBuffer`` of graded values (the 8-bit image each step, or event counts);
- ``Conv2d`` -> ``conv.Conv`` (kernel flipped and transposed to (C_out, W, H, C_in)); ``Dense`` -> 1x1 ``Conv``.
  lava's Conv model ignores ``weight_exp``, so ``2**weight_exp`` (>= 0, see quantize) is folded into the weights;
  graded inputs use ``num_message_bits = 24``;
- ``LoihiLIF`` -> ``lif.LIF`` with its vth, du, dv, per-neuron bias mantissa and exponent;
- ``OrPool`` -> depthwise ``Conv`` of ones + an OR neuron (LIF, du = dv = 4095, vth = 0: fires iff the sum > 0);
- ``Add`` -> a depthwise identity ``Conv`` whose InPort sums the (delay-balanced) inputs: graded spikes;
- ``SpikingAttention`` -> ``SpikingSelfAttention`` (attention.py);
- ``Head`` -> on the host: integer sums of the last residual stream over tokens and the T steps, then ``w c + b``.
Every synapse delays by one step, so a node's output for input i, step t appears at Lava step
``depth + i * T + t``. The shallower input of each sum passes through identity Convs until depths match. A LIF
integrates its bias from the first step on, before its data arrives: ``io.reset.Reset`` zeroes each neuron's ``v``
just before its first real step of every input (period T). Garbage from those warm-up steps reaches the next layer
only before that layer's own reset, so the result equals the layer-synchronous simulator spike for spike.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DeployError
from ...ir import Graph
from ...ir.ops import LIF, Add, Conv2d, Dense, Flatten, Head, Input, LoihiLIF, OrPool, SpikingAttention
from ..lava_io import attach_recorder, read_aligned, run_fixed_pt, source_data

GRADED_BITS = 24


@dataclass
class LavaResult:
    outputs: dict[str, np.ndarray]  # node -> [T, B, ...] in the simulator's layout (images CHW, tokens [N, C])
    int_logits: np.ndarray  # [B, classes]
    predictions: np.ndarray  # [B]
    steps: int
    processes: int
    seconds: float


def _grid(shape) -> tuple[int, int, int]:
    """IR shape -> Lava (W, H, C); token maps [C, N] live on their square grid."""
    if len(shape) == 3:
        c, h, w = shape
    else:
        c, n = shape
        h = w = int(round(n**0.5))
    return (int(w), int(h), int(c))


class LavaNetwork:
    """Builds and runs the process graph of an integer deploy graph (one build per ``run``)."""

    def __init__(self, graph: Graph):
        if not any(isinstance(n.op, LoihiLIF) for n in graph.nodes.values()):
            raise DeployError("the Lava backend needs the integer graph of an export (graph.json)")
        for n in graph.of_type(Conv2d, Dense):
            if n.op.weight_exp < 0:
                raise DeployError(f"{n.name}: weight_exp {n.op.weight_exp} < 0 cannot be folded into lava's Conv")
        self.graph = graph
        self.T = graph.config.T
        self.bounds = graph.value_bounds()

    def run(self, x: np.ndarray, record: set[str] | None = None) -> LavaResult:
        """Run inputs ``x`` (the model's input batch, float) back to back; ``record``: nodes whose spikes to return
        (default: every neuron and OR node)."""
        start = time.perf_counter()
        g, T = self.graph, self.T
        x = np.asarray(x, dtype=np.float64)
        batch = x.shape[0]
        record = record if record is not None else {n.name for n in g.of_type(LIF, LoihiLIF, OrPool)}
        head = g.output
        builder = _Builder(g, T, batch, self.bounds)
        ports, depth = builder.build(x)
        steps = builder.steps
        with tempfile.TemporaryDirectory(prefix="spikformer-lava-") as tmp:
            names = [*sorted(record), head.inputs[0]]
            files = {name: attach_recorder(ports[name], steps, os.path.join(tmp, f"{i}.bin"))
                     for i, name in enumerate(names)}
            run_fixed_pt(builder.source, steps)
            data = {name: read_aligned(files[name], steps, depth[name], T, batch, g.nodes[name].shape)
                    for name in names}
        outputs = {name: data[name] for name in record}
        counts = data[head.inputs[0]].sum(axis=(0, 2)).astype(np.int64)  # tokens [T, B, N, C] -> [B, C]
        int_logits = counts @ head.op.weight.astype(np.int64).T + head.op.bias.astype(np.int64)
        return LavaResult(outputs, int_logits, int_logits.argmax(1), steps, len(builder.processes) + len(names),
                          time.perf_counter() - start)


class _Builder:
    def __init__(self, graph: Graph, T: int, batch: int, bounds: dict):
        self.g, self.T, self.batch, self.bounds = graph, T, batch, bounds
        self.processes = []

    def add(self, proc):
        self.processes.append(proc)
        return proc

    def conv(self, port, weight, shape, graded, stride=1, padding=0, groups=1):
        from lava.proc.conv.process import Conv

        proc = self.add(Conv(weight=weight.astype(np.int32), input_shape=shape, padding=(padding, padding),
                             stride=(stride, stride), groups=groups, num_message_bits=GRADED_BITS if graded else 0))
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

    def build(self, x: np.ndarray):
        from lava.proc.io.source import RingBuffer as Source

        from .attention import SpikingSelfAttention

        g = self.g
        ports, depth = {}, {}
        for node in g.nodes.values():
            op, name = node.op, node.name
            if isinstance(op, Head):
                continue  # on the host, from the recorded residual stream
            shape = _grid(node.shape)
            if isinstance(op, Input):
                # one quiet step after the last input; the ring buffer then repeats, but that reaches each layer only
                # after its last recorded step
                self.source = self.add(Source(data=source_data(op, x, self.T, self.batch * self.T + 1)))
                ports[name], depth[name] = self.source.s_out, 1
            elif isinstance(op, (Conv2d, Dense)):
                src = node.inputs[0]
                w = op.weight.astype(np.int64) * 2**op.weight_exp
                if isinstance(op, Conv2d):
                    lava_w = w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)  # true convolution, (C_out, W, H, C_in)
                    args = dict(stride=op.stride, padding=op.padding)
                else:
                    lava_w = w[:, None, None, :]
                    args = {}
                ports[name] = self.conv(ports[src], lava_w, _grid(g.nodes[src].shape), self.bounds[src] > 1, **args)
                depth[name] = depth[src] + 1
            elif isinstance(op, LoihiLIF):
                src = node.inputs[0]
                bias = op.bias_mant.reshape(-1)
                ports[name] = self.neuron(ports[src], shape, depth[src], op.vth, op.du, op.dv, bias, op.bias_exp)
                depth[name] = depth[src]
            elif isinstance(op, OrPool):
                src = node.inputs[0]
                c = shape[2]
                summed = self.conv(ports[src], np.ones((c, op.kernel, op.kernel, 1)), _grid(g.nodes[src].shape),
                                   False, stride=op.stride, padding=op.padding, groups=c)
                depth[name] = depth[src] + 1
                ports[name] = self.neuron(summed, shape, depth[name], vth=0, du=4095, dv=4095)
            elif isinstance(op, Add):
                target = max(depth[i] for i in node.inputs)
                relay_in = [self.delayed(ports[i], shape, target - depth[i]) for i in node.inputs]
                c = shape[2]
                from lava.proc.conv.process import Conv

                relay = self.add(Conv(weight=np.ones((c, 1, 1, 1), dtype=np.int32), input_shape=shape, groups=c,
                                      num_message_bits=GRADED_BITS))
                for port in relay_in:  # the InPort sums every connection: the residual sum, graded
                    port.connect(relay.s_in)
                ports[name], depth[name] = relay.a_out, target + 1
            elif isinstance(op, Flatten):
                ports[name], depth[name] = ports[node.inputs[0]], depth[node.inputs[0]]
            elif isinstance(op, SpikingAttention):
                q, k, v = node.inputs
                if not depth[q] == depth[k] == depth[v]:
                    raise DeployError(f"{name}: q, k, v arrive at different steps")
                proc = self.add(SpikingSelfAttention(shape=shape, num_heads=op.num_heads, head_dim=op.head_dim,
                                                     order=op.order, out_shift=op.out_shift))
                for port_name, src in zip(("q", "k", "v"), node.inputs):
                    ports[src].connect(getattr(proc, port_name))
                ports[name], depth[name] = proc.a_out, depth[q]
            else:
                raise DeployError(f"the Lava backend has no mapping for {op.type} ({name})")
        self.steps = max(depth.values()) + self.batch * self.T + 1
        return ports, depth


def build_network(directory: Path) -> LavaNetwork:
    """The Lava network of an artifact directory (checked against its manifest first)."""
    from ...export import verify_files
    from ...ir.serialize import load_graph

    verify_files(directory)
    return LavaNetwork(load_graph(directory))
