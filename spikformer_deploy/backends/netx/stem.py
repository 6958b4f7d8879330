"""The SPS stem as a lava-dl netx network (``lava.lib.dl.netx.hdf5.Network``).

netx holds chains of ``conv``/``dense`` layers with CUBA neurons and no pooling or residuals, so the file holds the
stem up to (not including) its first residual sum: every conv + LIF, and each max-pool as a depthwise ``conv`` of
ones (stride 2) with an OR neuron (vth 0, no memory). Integers are the integer IR's: conv weights in torch
orientation with ``2**weight_exp`` folded in (netx's Conv ignores exponents), CUBA ``iDecay = du + 1``,
``vDecay = dv``, ``vThMant = vth`` and bias ``bias_mant << (bias_exp - 6)`` (netx fixes ``bias_exp = 6``). The input
is the 8-bit graded image (``input_message_bits = 8``; event counts likewise). Run with ``reset_interval = T`` and
``reset_offset = 1``, netx resets each layer's state one step later than the previous one — where its data starts:
each netx layer is one synapse hop, so its output appears at the step ``Graph.pipeline_depths`` gives its node.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from ...errors import DeployError, GraphError
from ...ir import Graph, Node, OpTable
from ...ir.ops import Conv2d, Input, LoihiLIF, OrPool

NETX_FILE = "stem.netx.h5"


def stem_layers(graph: Graph) -> list[str]:
    """Neuron and OR nodes of the chain of synapse + neuron layers from the input, up to the first other op (the
    first residual sum, a graded relay or max-pool of a real-valued stream)."""
    names = []
    for node in graph.nodes.values():
        if node.op.neuron_group and node.op.spiking:
            names.append(node.name)
        elif not (isinstance(node.op, Input) or node.op.synapse):
            break
    return names


def _string(group, key: str, value: str) -> None:
    group.create_dataset(key, (1,), "S10", [value.encode("ascii")])


def _neuron(group, vth: int, du: int, dv: int) -> None:
    _string(group, "neuron/type", "CUBA")
    group.create_dataset("neuron/iDecay", data=du + 1)
    group.create_dataset("neuron/vDecay", data=dv)
    group.create_dataset("neuron/vThMant", data=vth)
    group.create_dataset("neuron/refDelay", data=1)
    group.create_dataset("neuron/gradedSpike", data=False)


def _pool_layer(graph: Graph, node: Node, layer) -> None:
    """An OR pool: a depthwise conv of ones into OR neurons (vth 0, no memory)."""
    op, c = node.op, node.shape[0]
    _synapse(layer, np.ones((c, 1, op.kernel, op.kernel)), (op.stride, op.stride), (op.padding, op.padding), c)
    _neuron(layer, vth=0, du=4095, dv=4095)


def _lif_layer(graph: Graph, node: Node, layer) -> None:
    """A conv synapse and the LIF it feeds."""
    syn, op = graph.nodes[node.inputs[0]], node.op
    if not isinstance(syn.op, Conv2d) or syn.op.weight_exp < 0:
        raise DeployError(f"{node.name}: netx stem layers must be convolutions with weight_exp >= 0")
    if op.bias_exp < 6:
        raise DeployError(f"{node.name}: bias_exp {op.bias_exp} < 6 has no netx form (netx fixes 6)")
    _synapse(layer, syn.op.weight.astype(np.int64) * 2**syn.op.weight_exp, syn.op.stride, syn.op.padding,
             syn.op.groups)
    layer.create_dataset("bias", data=op.bias_mant.astype(np.int32) << (op.bias_exp - 6))
    _neuron(layer, vth=int(op.vth), du=int(op.du), dv=int(op.dv))


def _synapse(layer, weight, stride: tuple[int, int], padding: tuple[int, int], groups: int) -> None:
    """netx's (y, x) order, as our (h, w)."""
    layer.create_dataset("weight", data=weight.astype(np.int32))
    layer.create_dataset("stride", data=np.array(stride))
    layer.create_dataset("padding", data=np.array(padding))
    layer.create_dataset("dilation", data=np.array([1, 1]))
    layer.create_dataset("groups", data=groups)


LAYERS = OpTable("the netx stem writer", {LoihiLIF: _lif_layer, OrPool: _pool_layer},
                 otherwise="netx layers are synapse + CUBA neuron groups (synapses are written with the neuron group "
                           "they feed; the stem stops at the first other op)")


def write_netx_stem(graph: Graph, directory: Path) -> list[Path]:
    import h5py

    if not graph.integer:
        raise GraphError(f"netx export needs the integer graph, this one is {graph.dialect}")
    if not stem_layers(graph):  # the first synapse already writes a real-valued stream (Meta-SpikeFormer): no stem
        return []
    path = Path(directory) / NETX_FILE
    with h5py.File(path, "w", track_order=True) as f:
        layer = f.create_group("layer/0")
        _string(layer, "type", "input")
        layer.create_dataset("shape", data=np.array(graph.input.op.shape))
        for i, name in enumerate(stem_layers(graph), start=1):
            node = graph.nodes[name]
            layer = f.create_group(f"layer/{i}")
            _string(layer, "type", "conv")
            layer.create_dataset("shape", data=np.array(node.shape))
            LAYERS(node)(graph, node, layer)
    return [path]


def run_netx_stem(path: Path, graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Load the file with ``netx.hdf5.Network``, run ``x`` back to back, return each stem layer's spikes
    ``[T, B, C, H, W]`` aligned to the simulator's time axis."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # lava-dl prints notes about CUDA and optional toolboxes when imported
        from lava.lib.dl import netx
    from lava.proc.io.source import RingBuffer as Source

    from ..lava_io import attach_recorder, read_aligned, run_fixed_pt, source_data

    T = graph.steps
    inp = graph.input.op
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=inp.bits or 8, reset_interval=T, reset_offset=1)
    batch = len(x)
    steps = len(net.layers) + batch * T + 1
    source = Source(data=source_data(inp, x, T, steps))
    source.s_out.connect(net.inp)
    with tempfile.TemporaryDirectory(prefix="spikformer-netx-") as tmp:
        files = [attach_recorder(layer.out, steps, os.path.join(tmp, f"{i}.bin")) for i, layer in enumerate(net.layers)]
        run_fixed_pt(net, steps)
        depth = graph.pipeline_depths()
        return {name: read_aligned(rec, steps, depth[name], T, batch, graph.nodes[name].shape)
                for name, rec in zip(stem_layers(graph), files)}
