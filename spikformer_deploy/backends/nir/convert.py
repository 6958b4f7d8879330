"""Float deploy graph <-> NIR 1.0 (``nir`` package), readable by standard NIR tools.

Mapping (per time step; the NIR graph is one step of the network):
- ``Conv2d`` -> ``nir.Conv2d``; token-wise ``Dense`` -> 1x1 ``nir.Conv2d`` on the token grid ``[C, H, W]`` (NIR has
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
- ``Head`` -> ``nir.AvgPool2d`` over the grid, ``nir.Flatten``, ``nir.Affine``; the logits are the mean over time
  steps of the per-step output (exact: the head is affine).
Input: ``nir.Input`` of one step's input ``[C, H, W]`` (an image repeated T times, or one event frame).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ir import Graph, GraphError
from ...ir.ops import LIF, Add, Conv2d, Dense, Flatten, Head, Input, OrPool, SpikingAttention
from ...model.config import SpikformerConfig

NIR_FILE = "model.nir"
DT = 1e-4  # seconds per time step (snnTorch's importer hard-codes it)
KEY = "spikformer_deploy"


def _grid(shape) -> tuple[int, int, int]:
    """[C, N] token maps live on their square grid in NIR."""
    if len(shape) == 3:
        return tuple(int(d) for d in shape)
    c, n = shape
    side = int(round(n**0.5))
    return (int(c), side, side)


def _scale_one(shape, **meta):
    import nir

    return nir.Scale(scale=np.ones(_grid(shape), dtype=np.float32), metadata={KEY: meta})


def to_nir(graph: Graph):
    import nir

    if any(isinstance(n.op, SpikingAttention) and n.op.rewritten for n in graph.nodes.values()):
        raise GraphError("write NIR from the float graph before rewrite_ssa (attn_lif keeps its original threshold)")
    cfg = graph.config
    nodes, edges = {}, []
    tail = {}  # IR node -> NIR node that carries its output
    for node in graph.nodes.values():
        op, name = node.op, node.name
        if isinstance(op, Input):
            nodes[name] = nir.Input(input_type=np.array(op.shape),
                                    metadata={KEY: {"op": "Input", "kind": op.kind, "T": cfg.T,
                                                    "config": {k: str(v) for k, v in cfg.to_dict().items()}}})
        elif isinstance(op, Conv2d):
            if op.quantized:
                raise GraphError("NIR export takes the float graph")
            nodes[name] = nir.Conv2d(input_shape=tuple(graph.nodes[node.inputs[0]].shape[1:]), weight=op.weight,
                                     stride=op.stride, padding=op.padding, dilation=1, groups=1, bias=op.bias,
                                     metadata={KEY: {"op": "Conv2d"}})
        elif isinstance(op, Dense):
            grid = _grid(graph.nodes[node.inputs[0]].shape)
            nodes[name] = nir.Conv2d(input_shape=grid[1:], weight=op.weight[:, :, None, None], stride=1, padding=0,
                                     dilation=1, groups=1, bias=op.bias, metadata={KEY: {"op": "Dense"}})
        elif isinstance(op, LIF):
            shape = _grid(node.shape)
            full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
            nodes[name] = nir.LIF(tau=full(op.tau * DT), r=full(1.0), v_leak=full(0.0), v_threshold=full(op.v_threshold),
                                  metadata={KEY: {"op": "LIF", "tau_steps": op.tau, "v_threshold": op.v_threshold,
                                                  "dt": DT, "discretization": "forward Euler, dt = 1e-4 s",
                                                  "fires_on": "v >= v_threshold (ties fire)", "reset": "hard, to 0"}})
        elif isinstance(op, OrPool):
            k, s, p = (np.array([v, v]) for v in (op.kernel, op.stride, op.padding))
            nodes[f"{name}.sum"] = nir.SumPool2d(kernel_size=k, stride=s, padding=p, metadata={KEY: {"op": "OrPool"}})
            nodes[name] = nir.Threshold(threshold=np.zeros(node.shape, dtype=np.float32),
                                        metadata={KEY: {"op": "OrPool"}})
            edges.append((f"{name}.sum", name))
            tail[name] = name
            edges.append((tail[node.inputs[0]], f"{name}.sum"))
            continue
        elif isinstance(op, Add):
            nodes[name] = _scale_one(node.shape, op="Add")
        elif isinstance(op, Flatten):
            nodes[name] = _scale_one(node.shape, op="Flatten", note="tokens = this grid, row-major")
        elif isinstance(op, SpikingAttention):
            nodes[name] = _scale_one(node.shape, op="SpikingAttention", operands=list(node.inputs),
                                     num_heads=op.num_heads, head_dim=op.head_dim, scale=op.scale, order=op.order,
                                     meaning="per head: (Q K^T V) * scale on binary q, k, v (a NIR extension: a "
                                             "generic reader sees q + k + v)")
        elif isinstance(op, Head):
            grid = _grid(graph.nodes[node.inputs[0]].shape)
            nodes[f"{name}.pool"] = nir.AvgPool2d(kernel_size=np.array(grid[1:]), stride=np.array(grid[1:]),
                                                  padding=np.array([0, 0]), metadata={KEY: {"op": "Head"}})
            nodes[f"{name}.flatten"] = nir.Flatten(input_type={"input": np.array([grid[0], 1, 1])}, start_dim=0,
                                                   end_dim=-1, metadata={KEY: {"op": "Head"}})
            nodes[name] = nir.Affine(weight=op.weight, bias=op.bias,
                                     metadata={KEY: {"op": "Head", "logits": "mean over time steps of this output"}})
            edges += [(tail[node.inputs[0]], f"{name}.pool"), (f"{name}.pool", f"{name}.flatten"),
                      (f"{name}.flatten", name)]
            tail[name] = name
            continue
        else:
            raise GraphError(f"NIR export: no mapping for {op.type} ({name})")
        tail[name] = name
        edges += [(tail[i], name) for i in node.inputs]
    nodes["output"] = nir.Output(output_type=np.array([cfg.num_classes]))
    edges.append((tail[graph.output.name], "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={KEY: {"format": "spikformer-deploy NIR", "version": 1}})


def write_nir(graph: Graph, directory: Path) -> list[Path]:
    import nir

    path = Path(directory) / NIR_FILE
    nir.write(str(path), to_nir(graph))
    return [path]


def read_nir(path: Path) -> Graph:
    import nir

    try:
        return from_nir(nir.read(str(path)))
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(f"cannot read NIR file {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def _meta(node) -> dict:
    return (node.metadata or {}).get(KEY, {})


def _config(meta: dict) -> SpikformerConfig:
    raw = meta["config"]
    types = {"variant": str, "mlp_ratio": float}
    values = {k: types.get(k, int)(v) for k, v in raw.items()}
    if values["mlp_ratio"] == int(values["mlp_ratio"]):
        values["mlp_ratio"] = int(values["mlp_ratio"])
    return SpikformerConfig(**values)


def from_nir(nir_graph) -> Graph:
    import nir

    """Rebuild the float deploy graph from a NIR graph this module wrote."""
    nodes = nir_graph.nodes
    sources: dict[str, list[str]] = {}
    for a, b in nir_graph.edges:
        sources.setdefault(b, []).append(a)
    start = next((k for k, n in nodes.items() if _meta(n).get("op") == "Input"), None)
    if start is None:
        raise GraphError("this NIR graph was not written by spikformer-deploy (no annotated input)")
    cfg = _config(_meta(nodes[start]))
    g = Graph(cfg)
    order = _topological(nir_graph)
    resolved = {}  # NIR node -> IR node carrying its output

    def ir_inputs(key):
        return [resolved[s] for s in sources.get(key, [])]

    for key in order:
        node, meta = nodes[key], _meta(nodes[key])
        op = meta.get("op")
        if key == "output":
            continue
        if op == "Input":
            g.add(key, Input(shape=tuple(int(d) for d in node.input_type["input"]), kind=meta["kind"]))
        elif op == "Conv2d":
            g.add(key, Conv2d(weight=np.asarray(node.weight, dtype=np.float64), bias=np.asarray(node.bias),
                              stride=int(np.ravel(node.stride)[0]), padding=int(np.ravel(node.padding)[0])),
                  ir_inputs(key))
        elif op == "Dense":
            w = np.asarray(node.weight, dtype=np.float64)
            g.add(key, Dense(weight=w[:, :, 0, 0], bias=np.asarray(node.bias)), ir_inputs(key))
        elif op == "LIF":
            g.add(key, LIF(v_threshold=float(meta["v_threshold"]), tau=float(meta["tau_steps"])), ir_inputs(key))
        elif op == "OrPool":
            if isinstance(node, nir.SumPool2d):
                resolved[key] = ir_inputs(key)[0]
                continue
            pool = nodes[sources[key][0]]
            g.add(key, OrPool(kernel=int(pool.kernel_size[0]), stride=int(pool.stride[0]),
                              padding=int(pool.padding[0])), [resolved[sources[key][0]]])
        elif op == "Add":
            g.add(key, Add(), ir_inputs(key))
        elif op == "Flatten":
            g.add(key, Flatten(), ir_inputs(key))
        elif op == "SpikingAttention":
            g.add(key, SpikingAttention(num_heads=int(meta["num_heads"]), head_dim=int(meta["head_dim"]),
                                        scale=float(meta["scale"]), order=str(meta["order"])),
                  [resolved[_text(o)] for o in meta["operands"]])
        elif op == "Head":
            if not isinstance(node, nir.Affine):
                resolved[key] = ir_inputs(key)[0]
                continue
            g.add(key, Head(weight=np.asarray(node.weight, dtype=np.float64), bias=np.asarray(node.bias)),
                  ir_inputs(key))
        else:
            raise GraphError(f"NIR node {key} ({type(node).__name__}) carries no spikformer_deploy annotation")
        resolved[key] = key
    g.validate()
    return g


def _text(value) -> str:
    """Strings inside lists come back from NIR's HDF5 as bytes."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _topological(nir_graph) -> list[str]:
    indegree = {k: 0 for k in nir_graph.nodes}
    for _, b in nir_graph.edges:
        indegree[b] += 1
    ready = [k for k, d in indegree.items() if d == 0]
    order = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for a, b in nir_graph.edges:
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
