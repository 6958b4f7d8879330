"""The SPS stem as a lava-dl netx network (``lava.lib.dl.netx.hdf5.Network``).

netx holds chains of ``conv``/``dense`` layers with CUBA neurons and no pooling or residuals, so the file holds the
stem up to (not including) its first residual sum: every conv + LIF, and each max-pool as a depthwise ``conv`` of
ones (stride 2) with an OR neuron (vth 0, no memory). Integers are the integer IR's: conv weights in torch
orientation with ``2**weight_exp`` folded in (netx's Conv ignores exponents), CUBA ``iDecay = du + 1``,
``vDecay = dv``, ``vThMant = vth`` and bias ``bias_mant << (bias_exp - 6)`` (netx fixes ``bias_exp = 6``). The input
is the 8-bit graded image (``input_message_bits = 8``; event counts likewise). Run with ``reset_interval = T`` and
``reset_offset = 1``, netx resets each layer's state one step later than the previous one — where its data starts.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from ...errors import DeployError
from ...ir import Graph
from ...ir.ops import Add, Conv2d, LoihiLIF, OrPool

NETX_FILE = "stem.netx.h5"


def stem_layers(graph: Graph) -> list[str]:
    """Neuron and OR nodes of the chain from the input to the first residual sum."""
    names = []
    for node in graph.nodes.values():
        if isinstance(node.op, Add):
            break
        if isinstance(node.op, (LoihiLIF, OrPool)):
            names.append(node.name)
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


def write_netx_stem(graph: Graph, directory: Path) -> list[Path]:
    import h5py

    if not any(isinstance(n.op, LoihiLIF) for n in graph.nodes.values()):
        raise DeployError("netx export needs the integer graph")
    path = Path(directory) / NETX_FILE
    layers = stem_layers(graph)
    with h5py.File(path, "w", track_order=True) as f:
        inp = graph.input
        layer = f.create_group("layer/0")
        _string(layer, "type", "input")
        layer.create_dataset("shape", data=np.array(inp.shape))
        for i, name in enumerate(layers, start=1):
            node = graph.nodes[name]
            layer = f.create_group(f"layer/{i}")
            _string(layer, "type", "conv")
            layer.create_dataset("shape", data=np.array(node.shape))
            if isinstance(node.op, OrPool):
                c = node.shape[0]
                weight, stride, padding, groups = np.ones((c, 1, node.op.kernel, node.op.kernel)), node.op.stride, \
                    node.op.padding, c
                _neuron(layer, vth=0, du=4095, dv=4095)
            else:
                syn = graph.nodes[node.inputs[0]]
                if not isinstance(syn.op, Conv2d) or syn.op.weight_exp < 0:
                    raise DeployError(f"{name}: netx stem layers must be convolutions with weight_exp >= 0")
                weight = syn.op.weight.astype(np.int64) * 2**syn.op.weight_exp
                stride, padding, groups = syn.op.stride, syn.op.padding, 1
                op = node.op
                if op.bias_exp < 6:
                    raise DeployError(f"{name}: bias_exp {op.bias_exp} < 6 has no netx form (netx fixes 6)")
                layer.create_dataset("bias", data=op.bias_mant.astype(np.int32) << (op.bias_exp - 6))
                _neuron(layer, vth=int(op.vth), du=int(op.du), dv=int(op.dv))
            layer.create_dataset("weight", data=weight.astype(np.int32))
            layer.create_dataset("stride", data=np.array([stride, stride]))
            layer.create_dataset("padding", data=np.array([padding, padding]))
            layer.create_dataset("dilation", data=np.array([1, 1]))
            layer.create_dataset("groups", data=groups)
    return [path]


def run_netx_stem(path: Path, graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Load the file with ``netx.hdf5.Network``, run ``x`` back to back, return each stem layer's spikes
    ``[T, B, C, H, W]`` aligned to the simulator's time axis."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # lava-dl prints notes about CUDA and optional toolboxes when imported
        from lava.lib.dl import netx
    from lava.proc.io.source import RingBuffer as Source

    from ..lava_io import attach_recorder, read_aligned, run_fixed_pt, source_data

    T = graph.config.T
    inp = graph.input.op
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=inp.bits or 8, reset_interval=T, reset_offset=1)
    batch = len(x)
    steps = len(net.layers) + batch * T + 1
    source = Source(data=source_data(inp, x, T, steps))
    source.s_out.connect(net.inp)
    with tempfile.TemporaryDirectory(prefix="spikformer-netx-") as tmp:
        files = [attach_recorder(layer.out, steps, os.path.join(tmp, f"{i}.bin")) for i, layer in enumerate(net.layers)]
        run_fixed_pt(net, steps)
        # layer i's step-0 output appears at Lava step i + 2 (input at step 1, one synapse delay per layer)
        return {name: read_aligned(rec, steps, depth, T, batch, graph.nodes[name].shape)
                for depth, (name, rec) in enumerate(zip(stem_layers(graph), files), start=2)}
