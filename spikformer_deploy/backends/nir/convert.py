"""Float deploy graph <-> NIR 1.0 (``nir`` package), readable by standard NIR tools.

Mapping (per time step; the NIR graph is one step of the network):
- ``Conv2d`` -> ``nir.Conv2d``; ``DepthwiseConv2d`` -> ``nir.Conv2d`` of its dense kernel (annotated); token-wise
  ``Dense`` -> 1x1 ``nir.Conv2d`` on the token grid ``[C, H, W]`` (NIR has
  no token layout; tokens are the grid in row-major order, as the original's ``flatten(-2)``);
- ``LIF`` -> ``nir.LIF`` with tau = 2e-4 s, r = 1, v_leak = 0 at dt = 1e-4 s (forward Euler): exactly spikingjelly's
  tau = 2 LIF in snnTorch's importer (beta = 1 - dt/tau = 0.5). Metadata states the discrete-time convention and that
  the original fires on ``h >= v_th`` (NIR's text says ``>``) with a hard reset to 0;
- ``OrPool`` -> ``nir.SumPool2d`` + ``nir.Threshold(0)`` (OR of binary spikes);
- ``Add`` -> ``nir.Scale(1)`` with converging edges (NIR sums edges into a node);
- ``Flatten`` -> ``nir.Scale(1)`` marked in metadata (NIR keeps the grid);
- ``SpikingAttention`` -> EXTENSION: ``nir.Scale(1)`` reached by edges from q, k and v, with metadata
  ``spikformer_deploy = {op: SpikingAttention, operands: [q, k, v], num_heads, head_dim, scale, order}``. NIR has no
  product of two dynamic tensors: a generic consumer reads this node as ``q + k + v``; only this importer knows
  the product ``(Q Kᵀ V) * scale`` per head;
- ``StreamSum`` (the real-valued stream) -> ``nir.Scale(1)`` with converging edges, as ``Add``;
- ``TokenMean`` -> ``nir.AvgPool2d`` over the whole grid (exact);
- ``MaxPool`` (of real values) -> EXTENSION: ``nir.SumPool2d`` of its window (NIR has no max-pool; a generic reader
  sees a sum pool, of the right shape), metadata ``op: MaxPool``;
- ``AndTokenSum`` -> EXTENSION: ``nir.SumPool2d`` over the whole grid reached by edges from k and v (a generic
  reader sees the token sum of k + v), metadata ``operands: [k, v]``: the token sum of k AND v;
- ``ChannelMask`` -> EXTENSION: ``nir.Scale(1)`` on q's grid reached by q alone, metadata ``operands: [q, m]``:
  q AND m. NIR cannot broadcast m ``[C, 1, 1]`` onto q's grid (its ``Conv2d`` types ignore groups, so a broadcast
  would cost C² H W weights), so m's edge goes to an ``nir.Output`` of its own marked ``role: operand`` (a generic
  reader sees q, and m as a second output; without it NIR's type inference adds that output unnamed);
- ``Head`` -> ``nir.AvgPool2d`` over the grid, ``nir.Flatten``, ``nir.Affine``; the logits are the mean over time
  steps of the per-step output (exact: the head is affine).
Input: ``nir.Input`` of one step's input ``[C, H, W]`` (an image repeated T times, or one event frame).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ...errors import GraphError
from ...ir import Graph, Node, OpTable
from ...ir.ops import (ATTENTION_STAGES, LIF, OP_TYPES, Add, AndTokenSum, BatchNorm, ChannelMask, Conv2d, Dense, DepthwiseConv2d, Flatten,
                       Head, Input,
                       LoihiLIF, MaxPool, OrPool, SpikingAttention, StreamSum, TokenMean, Unflatten, Vectorize)
from .hdf5 import write_nir_file

NIR_FILE = "model.nir"
DT = 1e-4  # seconds per time step (snnTorch's importer hard-codes it)
KEY = "spikformer_deploy"
VERSION = 2  # 2: T and the model description on the input node ("steps", "model" as JSON)


def _meta(node) -> dict:
    return (node.metadata or {}).get(KEY, {})


def _array(a: np.ndarray | None) -> np.ndarray | None:
    """A writable copy for the NIR node: the IR's arrays are read-only, and NIR consumers (snnTorch) adopt them."""
    return None if a is None else np.array(a)


def _annotated(op: str, **meta) -> dict:
    return {KEY: {"op": op, **meta}}


# -- writing: one function per op type, each giving the chain of NIR nodes that carries the op ---------------------
def _write_input(graph: Graph, node: Node) -> list:
    import nir

    op = node.op
    return [(node.name, nir.Input(input_type=np.array(op.shape), metadata=_annotated(
        "Input", kind=op.kind, steps=op.steps, model=json.dumps(graph.meta.get("model", {}), sort_keys=True))))]


def _write_conv(graph: Graph, node: Node) -> list:
    import nir

    op = node.op
    # a depthwise kernel as the dense one it is: nir 1.0.8's type inference reads C_in from the weight, not groups
    return [(node.name, nir.Conv2d(input_shape=tuple(graph.grid(node.inputs[0])[1:]), weight=_array(
        op.dense_weight()), stride=op.stride, padding=op.padding, dilation=1, groups=1,
        bias=np.zeros(len(op.weight)) if op.bias is None else _array(op.bias), metadata=_annotated(op.type)))]


def _write_dense(graph: Graph, node: Node) -> list:
    import nir

    op = node.op
    return [(node.name, nir.Conv2d(input_shape=graph.grid(node.inputs[0])[1:], weight=_array(op.weight[:, :, None, None]),
                                   stride=1, padding=0, dilation=1, groups=1, bias=_array(op.bias),
                                   metadata=_annotated("Dense")))]


def _write_lif(graph: Graph, node: Node) -> list:
    import nir

    op = node.op
    shape = graph.grid(node.name)
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return [(node.name, nir.LIF(tau=full(op.tau * DT), r=full(1.0), v_leak=full(0.0),
                                v_threshold=full(op.v_threshold), metadata=_annotated(
                                    "LIF", tau_steps=op.tau, v_threshold=op.v_threshold, dt=DT,
                                    discretization="forward Euler, dt = 1e-4 s", fires_on="v >= v_threshold (ties fire)",
                                    reset="hard, to 0")))]


def _write_or_pool(graph: Graph, node: Node) -> list:
    import nir

    op = node.op
    k, s, p = (np.array([v, v]) for v in (op.kernel, op.stride, op.padding))
    return [(f"{node.name}.sum", nir.SumPool2d(kernel_size=k, stride=s, padding=p, metadata=_annotated("OrPool"))),
            (node.name, nir.Threshold(threshold=np.zeros(node.shape, dtype=np.float32),
                                      metadata=_annotated("OrPool")))]


def _scale_one(graph: Graph, node: Node, op: str, **meta):
    import nir

    return [(node.name, nir.Scale(scale=np.ones(graph.grid(node.name), dtype=np.float32),
                                  metadata=_annotated(op, **meta)))]


def _write_add(graph: Graph, node: Node) -> list:
    return _scale_one(graph, node, "Add")


def _write_stream_sum(graph: Graph, node: Node) -> list:
    return _scale_one(graph, node, "StreamSum", note="the real-valued residual stream")


def _write_max_pool(graph: Graph, node: Node) -> list:
    import nir

    op = node.op
    k, st, p = (np.array([v, v]) for v in (op.kernel, op.stride, op.padding))
    return [(node.name, nir.SumPool2d(kernel_size=k, stride=st, padding=p, metadata=_annotated(
        "MaxPool", kernel=op.kernel, stride=op.stride, padding=op.padding,
        meaning="max over each window, padding never wins (a NIR extension: a generic reader sees a sum pool)")))]


def _whole_grid(graph: Graph, node: Node, cls, op: str, **meta) -> list:
    """An ``nir.AvgPool2d`` or ``nir.SumPool2d`` whose window is the whole grid of the node's first input."""
    grid = np.array(graph.grid(node.inputs[0])[1:])
    return [(node.name, cls(kernel_size=grid, stride=grid, padding=np.array([0, 0]), metadata=_annotated(op, **meta)))]


def _write_token_mean(graph: Graph, node: Node) -> list:
    import nir

    return _whole_grid(graph, node, nir.AvgPool2d, "TokenMean")


def _write_and_token_sum(graph: Graph, node: Node) -> list:
    import nir

    return _whole_grid(graph, node, nir.SumPool2d, "AndTokenSum", operands=list(node.inputs),
                       meaning="per channel: tokens where k AND v spike (a NIR extension: a generic reader sees the "
                               "token sum of k + v)")


def _write_channel_mask(graph: Graph, node: Node) -> list:
    return _scale_one(graph, node, "ChannelMask", operands=list(node.inputs),
                      meaning="q AND the per-channel spike m, broadcast over the tokens (a NIR extension: a generic "
                              "reader sees q + m)")


def _write_flatten(graph: Graph, node: Node) -> list:
    return _scale_one(graph, node, "Flatten", note="tokens = this grid, row-major")


def _write_unflatten(graph: Graph, node: Node) -> list:
    return _scale_one(graph, node, "Unflatten", height=node.op.height, width=node.op.width,
                      note="the tokens back on this grid")


def _write_attention(graph: Graph, node: Node) -> list:
    op = node.op
    if op.rewritten:
        raise GraphError("write NIR from the float graph before rewrite_ssa (attn_lif keeps its original threshold)")
    return _scale_one(graph, node, "SpikingAttention", operands=list(node.inputs), num_heads=op.num_heads,
                      head_dim=op.head_dim, scale=op.scale, order=op.order,
                      meaning="per head: (Q K^T V) * scale on binary q, k, v (a NIR extension: a generic reader sees "
                              "q + k + v)")


def _write_head(graph: Graph, node: Node) -> list:
    import nir

    grid = graph.grid(node.inputs[0])
    return [(f"{node.name}.pool", nir.AvgPool2d(kernel_size=np.array(grid[1:]), stride=np.array(grid[1:]),
                                                padding=np.array([0, 0]), metadata=_annotated("Head"))),
            (f"{node.name}.flatten", nir.Flatten(input_type={"input": np.array([grid[0], 1, 1])}, start_dim=0,
                                                 end_dim=-1, metadata=_annotated("Head"))),
            (node.name, nir.Affine(weight=_array(node.op.weight), bias=_array(node.op.bias),
                                   metadata=_annotated("Head", logits="mean over time steps of this output")))]


UNWIRED_OPERANDS = {ChannelMask: (1,)}  # operands of another shape: NIR has no broadcast, metadata carries them

_FLOAT_ONLY = "NIR carries the float graph (export writes it before quantization)"
TO_NIR = OpTable("the NIR writer", {
    Input: _write_input, Conv2d: _write_conv, DepthwiseConv2d: _write_conv, Dense: _write_dense, LIF: _write_lif,
    OrPool: _write_or_pool,
    Add: _write_add, StreamSum: _write_stream_sum, MaxPool: _write_max_pool, TokenMean: _write_token_mean,
    AndTokenSum: _write_and_token_sum, ChannelMask: _write_channel_mask, Flatten: _write_flatten,
    Unflatten: _write_unflatten,
    SpikingAttention: _write_attention, Head: _write_head,
}, unsupported={LoihiLIF: _FLOAT_ONLY, BatchNorm: "fold it into its synapse first (fold_batchnorm)",
                Vectorize: "comes only from netx networks, which are integer graphs (NIR carries float graphs)",
                **{stage: "the attention on neurocores is a Loihi 2 placement of the integer graph (lower_attention); "
                          "NIR carries the float graph's SpikingAttention" for stage in ATTENTION_STAGES}})


def _on_grid(chain: list, point, out_shape) -> list:
    """A weighted chain (its last node a ``Conv2d`` or ``Affine``) on the deploy grid: that node holds the 8-bit
    mantissas as int8 and the bias in steps, and a ``Scale`` by the step follows (NIR has no weight scale of its own):
    the same float network, its weights 8 bytes -> 1, and arrays of int8 compress (66 M weights: 535 MB -> ~60 MB)."""
    import nir

    key, weighted = chain[-1]
    meta = _meta(weighted)
    mantissas = np.asarray(point.mantissas, dtype=np.int8).reshape(weighted.weight.shape)
    leading = dataclasses.replace(weighted, weight=mantissas, bias=np.asarray(point.bias, np.float64) / point.step,
                                  metadata={KEY: {**meta, "grid": "mantissas"}})
    scale = nir.Scale(scale=np.full(out_shape, point.step, dtype=np.float64),
                      metadata={KEY: {**meta, "grid": "step", "weight_bits": 8}})
    return [*chain[:-1], (f"{key}.mantissas", leading), (key, scale)]


def to_nir(graph: Graph, grid: dict | None = None):
    """One time step of the float graph as a NIR graph: each op becomes a chain of NIR nodes (its table entry); the
    chain's first node reads the inputs' last nodes, NIR summing converging edges. ``grid``: synapse or head name ->
    ``GridPoint`` (``passes.quantize.grid_points`` of the integer graph): those weights are written on the deploy
    grid (``_on_grid``) instead of as the float model's."""
    import nir

    if graph.integer:
        raise GraphError(f"NIR export takes the float graph, this one is {graph.dialect}")
    nodes, edges, tail, operands = {}, [], {}, []  # tail: IR node -> the NIR node that carries its output
    for node in graph.nodes.values():
        chain = TO_NIR(node)(graph, node)
        if grid and node.name in grid:
            chain = _on_grid(chain, grid[node.name], graph.grid(node.name) if node.op.synapse else node.shape)
        nodes.update(chain)
        keys = [k for k, _ in chain]
        unwired = UNWIRED_OPERANDS.get(type(node.op), ())
        edges += [(tail[i], keys[0]) for n, i in enumerate(node.inputs) if n not in unwired]
        edges += list(zip(keys, keys[1:]))
        operands += [(node, n) for n in unwired]
        tail[node.name] = keys[-1]
    for node, n in operands:  # an operand read by nothing else gets its own exit, or NIR's type inference adds one
        key, source = f"{node.name}.operand{n}", tail[node.inputs[n]]
        if not any(a == source for a, _ in edges):
            nodes[key] = nir.Output(output_type=np.array(graph.grid(node.inputs[n])),
                                    metadata=_annotated(type(node.op).__name__, role="operand", of=node.name))
            edges.append((source, key))
    nodes["output"] = nir.Output(output_type=np.array(graph.output.shape))
    edges.append((tail[graph.output.name], "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={KEY: {"format": "spikformer-deploy NIR",
                                                                 "version": VERSION}})


def write_nir(graph: Graph, directory: Path, grid: dict | None = None) -> list[Path]:
    path = Path(directory) / NIR_FILE
    write_nir_file(path, to_nir(graph, grid))
    return [path]


# -- reading: one function per op type; the leading nodes of a multi-node chain pass their input through ----------
def read_nir(path: Path) -> Graph:
    import nir

    try:
        return from_nir(nir.read(str(path)))
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(f"cannot read NIR file {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def _read_input(g: Graph, key, node, meta, inputs, nodes, sources):
    g.meta = {"model": json.loads(_text(meta.get("model", "{}")))}
    return Input(shape=tuple(int(d) for d in node.input_type["input"]), kind=_text(meta["kind"]),
                 steps=int(meta["steps"]))


def _weights(key, node, meta, nodes, sources):
    """(weighted NIR node, float64 weight, bias) of a synapse or head chain ending at ``key``: on the deploy grid the
    chain ends in the ``Scale`` by the step that follows the mantissas (``_on_grid``)."""
    if meta.get("grid") != "step":
        return node, np.asarray(node.weight, dtype=np.float64), np.asarray(node.bias, dtype=np.float64)
    weighted, step = nodes[sources[key][0]], float(np.ravel(node.scale)[0])
    return (weighted, np.asarray(weighted.weight, dtype=np.float64) * step,
            np.asarray(weighted.bias, dtype=np.float64) * step)


def _read_conv(g, key, node, meta, inputs, nodes, sources):
    if meta.get("grid") == "mantissas":
        return None
    conv, weight, bias = _weights(key, node, meta, nodes, sources)
    cls = OP_TYPES[_text(meta["op"])]
    if cls is DepthwiseConv2d:  # written dense: its diagonal
        weight = weight[np.arange(len(weight)), np.arange(len(weight))][:, None]
    return cls(weight=weight, bias=bias, stride=tuple(np.broadcast_to(np.ravel(conv.stride), 2)),
               padding=tuple(np.broadcast_to(np.ravel(conv.padding), 2)))


def _read_dense(g, key, node, meta, inputs, nodes, sources):
    if meta.get("grid") == "mantissas":
        return None
    _, weight, bias = _weights(key, node, meta, nodes, sources)
    return Dense(weight=weight[:, :, 0, 0], bias=bias)


def _read_lif(g, key, node, meta, inputs, nodes, sources):
    return LIF(v_threshold=float(meta["v_threshold"]), tau=float(meta["tau_steps"]))


def _read_or_pool(g, key, node, meta, inputs, nodes, sources):
    import nir

    if isinstance(node, nir.SumPool2d):
        return None
    pool = nodes[sources[key][0]]
    return OrPool(kernel=int(pool.kernel_size[0]), stride=int(pool.stride[0]), padding=int(pool.padding[0]))


def _plain(cls):
    """The reader of an op without parameters."""
    return lambda g, key, node, meta, inputs, nodes, sources: cls()


def _read_max_pool(g, key, node, meta, inputs, nodes, sources):
    return MaxPool(kernel=int(meta["kernel"]), stride=int(meta["stride"]), padding=int(meta["padding"]))


def _read_unflatten(g, key, node, meta, inputs, nodes, sources):
    return Unflatten(height=int(meta["height"]), width=int(meta["width"]))


def _read_attention(g, key, node, meta, inputs, nodes, sources):
    return SpikingAttention(num_heads=int(meta["num_heads"]), head_dim=int(meta["head_dim"]),
                            scale=float(meta["scale"]), order=_text(meta["order"]))


def _read_head(g, key, node, meta, inputs, nodes, sources):
    import nir

    if meta.get("grid") == "mantissas" or not isinstance(node, (nir.Affine, nir.Scale)):
        return None
    _, weight, bias = _weights(key, node, meta, nodes, sources)
    return Head(weight=weight, bias=bias)


FROM_NIR = {Input: _read_input, Conv2d: _read_conv, DepthwiseConv2d: _read_conv, Dense: _read_dense, LIF: _read_lif,
            OrPool: _read_or_pool,
            Add: _plain(Add), StreamSum: _plain(StreamSum), MaxPool: _read_max_pool, TokenMean: _plain(TokenMean),
            AndTokenSum: _plain(AndTokenSum), ChannelMask: _plain(ChannelMask), Flatten: _plain(Flatten),
            Unflatten: _read_unflatten, SpikingAttention: _read_attention, Head: _read_head}
FROM_NIR_UNSUPPORTED = TO_NIR.unsupported  # what is never written is never read


def from_nir(nir_graph) -> Graph:
    """Rebuild the float deploy graph from a NIR graph this module wrote."""
    nodes = nir_graph.nodes
    sources: dict[str, list[str]] = {}
    for a, b in nir_graph.edges:
        sources.setdefault(b, []).append(a)
    if not any(_meta(n).get("op") == "Input" for n in nodes.values()):
        raise GraphError("this NIR graph was not written by spikformer-deploy (no annotated input)")
    g = Graph()
    resolved = {}  # NIR node -> IR node carrying its output
    for key in _topological(nir_graph, {k: [_text(o) for o in _meta(n).get("operands", [])]
                                        for k, n in nodes.items()}):
        if key == "output" or _meta(nodes[key]).get("role") == "operand":  # exits: the graph's, an operand's
            continue
        node, meta = nodes[key], _meta(nodes[key])
        cls = OP_TYPES.get(_text(meta.get("op", "")))
        if cls not in FROM_NIR:
            raise GraphError(f"NIR node {key} ({type(node).__name__}) carries no spikformer_deploy annotation")
        inputs = [resolved[s] for s in sources.get(key, [])]
        if "operands" in meta:  # the inputs' order matters (NIR's edges have none)
            inputs = [resolved[_text(o)] for o in meta["operands"]]
        op = FROM_NIR[cls](g, key, node, meta, inputs, nodes, sources)
        if op is None:  # a leading node of the op's chain
            resolved[key] = inputs[0]
            continue
        g.add(key, op, inputs)
        resolved[key] = key
    g.validate()
    return g


def _text(value) -> str:
    """Strings inside lists come back from NIR's HDF5 as bytes."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _topological(nir_graph, operands: dict[str, list[str]]) -> list[str]:
    """The nodes in an order where each comes after its edges' sources and after the operands its metadata names
    (``UNWIRED_OPERANDS`` reach their node through metadata only)."""
    depends = list(nir_graph.edges) + [(o, k) for k, names in operands.items() for o in names
                                       if (o, k) not in nir_graph.edges]
    indegree = {k: 0 for k in nir_graph.nodes}
    for _, b in depends:
        indegree[b] += 1
    ready = [k for k, d in indegree.items() if d == 0]
    order = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for a, b in depends:
            if a == k:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    return order


def stem_subgraph(nir_graph, last: str):
    """The chain from the input to ``last`` (e.g. the stem before its first max-pool) as a standalone NIR graph."""
    import nir

    keep, key = [], last
    sources = {b: a for a, b in nir_graph.edges}
    while True:
        keep.append(key)
        if key not in sources:
            break
        key = sources[key]
    keep.reverse()
    nodes = {k: nir_graph.nodes[k] for k in keep}
    nodes["output"] = nir.Output(output_type=np.array(nir_graph.nodes[last].output_type["output"]))
    edges = list(zip(keep, keep[1:])) + [(last, "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)
