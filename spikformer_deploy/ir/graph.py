"""The deploy graph: ordered nodes (a topological order), each naming its inputs, like a torch.fx graph."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import DeployError
from ..model.config import SpikformerConfig
from .ops import Op


class GraphError(DeployError):
    """The graph is malformed (a pass or a file broke it)."""


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
    def __init__(self, config: SpikformerConfig):
        self.config = config
        self.nodes: dict[str, Node] = {}
        self.records: list[PassRecord] = []

    # -- building -------------------------------------------------------------------------------------------------
    def add(self, name: str, op: Op, inputs: tuple[str, ...] | list[str] = (), **meta) -> str:
        if name in self.nodes:
            raise GraphError(f"duplicate node name {name}")
        missing = [i for i in inputs if i not in self.nodes]
        if missing:
            raise GraphError(f"node {name} reads undefined node(s) {missing}")
        try:
            shape = op.out_shape(*(self.nodes[i].shape for i in inputs))
        except ValueError as exc:
            raise GraphError(f"node {name}: {exc}") from None
        self.nodes[name] = Node(name, op, tuple(inputs), tuple(int(d) for d in shape), dict(meta))
        return name

    def copy(self) -> "Graph":
        """A shallow structural copy: passes replace ops instead of mutating them, so sharing ops is safe."""
        g = Graph(self.config)
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

    # -- queries --------------------------------------------------------------------------------------------------
    @property
    def input(self) -> Node:
        return next(iter(self.nodes.values()))

    @property
    def output(self) -> Node:
        return next(reversed(self.nodes.values()))

    def record(self, name: str) -> PassRecord | None:
        """The record of the last run of pass ``name`` (None if it did not run)."""
        return next((r for r in reversed(self.records) if r.name == name), None)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes.values() if name in n.inputs]

    def of_type(self, *types) -> list[Node]:
        return [n for n in self.nodes.values() if isinstance(n.op, types)]

    def last_uses(self) -> dict[str, str]:
        """For each node, the name of the last node that reads it (to free simulator buffers early)."""
        last = {}
        for node in self.nodes.values():
            for i in node.inputs:
                last[i] = node.name
        return last

    def value_bounds(self) -> dict[str, float]:
        """Largest |value| each node can output in the integer graph: spikes 1, residual sums add their inputs,
        the input its bit width; other nodes (drives, logits) are unbounded here."""
        from .ops import LIF, Add, Flatten, Input, LoihiLIF, OrPool

        bound: dict[str, float] = {}
        for node in self.nodes.values():
            op = node.op
            if isinstance(op, Input):
                bits = op.bits or 8
                bound[node.name] = float(2 ** (bits - 1) if op.signed else 2**bits - 1)
            elif isinstance(op, (LIF, LoihiLIF, OrPool)):
                bound[node.name] = 1.0
            elif isinstance(op, Add):
                bound[node.name] = sum(bound[i] for i in node.inputs)
            elif isinstance(op, Flatten):
                bound[node.name] = bound[node.inputs[0]]
            else:
                bound[node.name] = float("inf")
        return bound

    def validate(self) -> None:
        seen = set()
        for node in self.nodes.values():
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
            "config": self.config.to_dict(),
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
        lines = [f"Graph({self.config.variant} {self.config.depth}-{self.config.dim}, T={self.config.T}, "
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
