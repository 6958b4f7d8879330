"""The deploy graph: ordered nodes (a topological order), each naming its inputs, like a torch.fx graph."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import GraphError
from .ops import DIALECTS, FLOAT, INTEGER, Flatten, Input, MaxPool, Op, StreamSum, Unflatten


@dataclass
class Node:
    name: str
    op: Op
    inputs: tuple[str, ...] = ()
    shape: tuple[int, ...] = ()  # output shape per sample and time step
    meta: dict = field(default_factory=dict)  # analyses write here (source module, spike names, ...)


@dataclass
class PassRecord:
    """What one pass changed: per-node entries for reports (scales, clipped weights, saturation risk, ...)."""

    name: str
    settings: dict = field(default_factory=dict)
    nodes: dict[str, dict] = field(default_factory=dict)


class Graph:
    """Nodes in topological order, of one ``dialect`` (``float`` or ``integer``: see ``ops``). Self-contained: T is
    the input node's ``steps``, the token grid follows from the shapes (``grid``), the class count is the output's
    size. ``meta`` carries what describes the source (e.g. ``{"model": <model config>}``) and nothing a backend
    needs."""

    def __init__(self, dialect: str = FLOAT, meta: dict | None = None):
        if dialect not in DIALECTS:
            raise GraphError(f"unknown dialect {dialect!r}; choose from {', '.join(DIALECTS)}")
        self.dialect = dialect
        self.meta = dict(meta or {})
        self.nodes: dict[str, Node] = {}
        self.records: list[PassRecord] = []

    # -- building -------------------------------------------------------------------------------------------------
    def add(self, name: str, op: Op, inputs: tuple[str, ...] | list[str] = (), **meta) -> str:
        if name in self.nodes:
            raise GraphError(f"duplicate node name {name}")
        missing = [i for i in inputs if i not in self.nodes]
        if missing:
            raise GraphError(f"node {name} reads undefined node(s) {missing}")
        self.nodes[name] = self._node(name, op, inputs, meta)
        return name

    def _node(self, name: str, op: Op, inputs, meta: dict | None = None) -> Node:
        """A node reading existing nodes, its shape from its op (a mismatch is a GraphError naming it)."""
        try:
            shape = op.out_shape(*(self.nodes[i].shape for i in inputs))
        except ValueError as exc:
            raise GraphError(f"node {name}: {exc}") from None
        return Node(name, op, tuple(inputs), tuple(int(d) for d in shape), dict(meta or {}))

    def copy(self, dialect: str | None = None) -> "Graph":
        """A structural copy sharing the (immutable) ops; ``dialect``: the copy's, for a pass that changes it."""
        g = Graph(dialect or self.dialect, self.meta)
        g.nodes = {n: Node(node.name, node.op, node.inputs, node.shape, dict(node.meta))
                   for n, node in self.nodes.items()}
        g.records = list(self.records)
        return g

    def remove_passthrough(self, name: str) -> None:
        """Remove a one-input node, rewiring its consumers to its input."""
        node = self.nodes.pop(name)
        (src,) = node.inputs
        for other in self.nodes.values():
            other.inputs = tuple(src if i == name else i for i in other.inputs)

    def insert_after(self, name: str, new: str, op: Op) -> str:
        """Put the one-input node ``new`` right after ``name``, its consumers reading ``new`` instead."""
        if new in self.nodes:
            raise GraphError(f"duplicate node name {new}")
        inserted = self._node(new, op, (name,))
        for other in self.nodes.values():
            other.inputs = tuple(new if i == name else i for i in other.inputs)
        nodes = {}
        for key, node in self.nodes.items():
            nodes[key] = node
            if key == name:
                nodes[new] = inserted
        self.nodes = nodes
        return new

    # -- queries --------------------------------------------------------------------------------------------------
    @property
    def input(self) -> Node:
        return next(iter(self.nodes.values()))

    @property
    def output(self) -> Node:
        return next(reversed(self.nodes.values()))

    @property
    def steps(self) -> int:
        """T: time steps per inference."""
        return self.input.op.steps

    @property
    def integer(self) -> bool:
        return self.dialect == INTEGER

    def grid(self, name: str) -> tuple[int, int, int]:
        """``(C, H, W)`` of a node's output: images as they are, token maps ``[C, N]`` on the grid of the image they
        were flattened from (token n = h * W + w), found by walking up their first inputs."""
        node = self.nodes[name]
        c, tokens = self.nodes[name].shape[0], int(np.prod(self.nodes[name].shape[1:]))
        if len(node.shape) == 2 and tokens == 1:  # one token per channel (a token sum or mean)
            return (c, 1, 1)
        while len(node.shape) == 2:
            node = self.nodes[node.inputs[0]]
        if len(node.shape) != 3:
            raise GraphError(f"{name} has no image grid (shape {list(self.nodes[name].shape)})")
        h, w = node.shape[1:]
        return (c, h, w)

    def record(self, name: str) -> PassRecord | None:
        """The record of the last run of pass ``name`` (None if it did not run)."""
        return next((r for r in reversed(self.records) if r.name == name), None)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes.values() if name in n.inputs]

    def of_type(self, *types) -> list[Node]:
        return [n for n in self.nodes.values() if isinstance(n.op, types)]

    def having(self, trait: str) -> list[Node]:
        """Nodes whose op has the trait (``"synapse"``, ``"spiking"``, ``"neuron_group"``, ``"embedded"``)."""
        return [n for n in self.nodes.values() if getattr(n.op, trait)]

    def last_uses(self) -> dict[str, str]:
        """For each node, the name of the last node that reads it (to free simulator buffers early)."""
        last = {}
        for node in self.nodes.values():
            for i in node.inputs:
                last[i] = node.name
        return last

    def on_stream(self, name: str) -> bool:
        """Whether node ``name`` carries the real-valued stream (its relays, a graded max-pool, their reshapes): what
        reads it gets signed graded spikes."""
        node = self.nodes[name]
        while isinstance(node.op, (Flatten, Unflatten)):
            node = self.nodes[node.inputs[0]]
        return isinstance(node.op, (StreamSum, MaxPool))

    def value_bounds(self) -> dict[str, float]:
        """Largest |value| each node can output in the integer dialect (``Op.out_bound``): spikes 1, residual sums
        add their inputs, the input its bit width; drives and logits are unbounded here."""
        bound: dict[str, float] = {}
        for node in self.nodes.values():
            bound[node.name] = node.op.out_bound(*(bound[i] for i in node.inputs))
        return bound

    def pipeline_depths(self) -> dict[str, int]:
        """The one delay rule (``Op.delay``): the Lava step at which each node's output for step 0 of an input
        appears. The host injects the input at step 1; every synapse hop (synapses, OR pools, residual relays) adds
        one step; neurons, the attention and the host-side head add none. Sums wait for their latest input."""
        depth: dict[str, int] = {}
        for node in self.nodes.values():
            depth[node.name] = max((depth[i] for i in node.inputs), default=0) + node.op.delay
        return depth

    def validate(self) -> None:
        """Structure (inputs defined before use, shapes), one input first, and every op admitted by the dialect."""
        if self.nodes and not isinstance(self.input.op, Input):
            raise GraphError(f"the first node {self.input.name} is {self.input.op.type}, not Input")
        seen = set()
        for node in self.nodes.values():
            problem = node.op.dialect_error(self.dialect)
            if problem:
                raise GraphError(f"node {node.name}: {problem}")
            for i in node.inputs:
                if i not in seen:
                    raise GraphError(f"node {node.name} reads {i}, which is not defined before it")
            expected = node.op.out_shape(*(self.nodes[i].shape for i in node.inputs))
            if tuple(expected) != node.shape:
                raise GraphError(f"node {node.name}: shape {node.shape} but its op gives {expected}")
            seen.add(node.name)

    # -- views ----------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready description; arrays are summarised (shape, dtype, range), not written out."""
        return {
            "dialect": self.dialect, "meta": _jsonable(self.meta),
            "nodes": [{"name": n.name, "op": n.op.type, "inputs": list(n.inputs), "shape": list(n.shape),
                       "attributes": _jsonable(n.op.attributes()),
                       "arrays": {k: _summary(v) for k, v in n.op.arrays().items()},
                       **({"meta": _jsonable(n.meta)} if n.meta else {})}
                      for n in self.nodes.values()],
            "passes": [{"name": r.name, "settings": _jsonable(r.settings)} for r in self.records],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def __str__(self) -> str:
        width = max(len(n) for n in self.nodes) if self.nodes else 0
        lines = [f"Graph({self.dialect}, T={self.steps if self.nodes else '?'}, "
                 f"passes: {', '.join(r.name for r in self.records) or 'none'})"]
        for n in self.nodes.values():
            attrs = ", ".join(f"{k}={v}" for k, v in n.op.attributes().items() if v is not None)
            arrays = ", ".join(f"{k}:{v.dtype}{list(v.shape)}" for k, v in n.op.arrays().items())
            inputs = ", ".join(n.inputs)
            lines.append(f"  {n.name:<{width}} = {n.op.type}({inputs}) -> {list(n.shape)}"
                         f"{'  ' + attrs if attrs else ''}{'  ' + arrays if arrays else ''}")
        return "\n".join(lines)


def _summary(a: np.ndarray) -> dict:
    return {"shape": list(a.shape), "dtype": str(a.dtype),
            "min": _jsonable(a.min()) if a.size else None, "max": _jsonable(a.max()) if a.size else None}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x
