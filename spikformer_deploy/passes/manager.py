"""Running passes: each is a plain function ``Graph -> Graph``; the graph is validated after each one."""
from __future__ import annotations

from typing import Callable

from ..ir import Graph, GraphError

Pass = Callable[[Graph], Graph]


def run_passes(graph: Graph, passes: list[Pass]) -> Graph:
    for p in passes:
        name = getattr(p, "__name__", getattr(getattr(p, "func", None), "__name__", repr(p)))
        graph = p(graph)
        try:
            graph.validate()
        except GraphError as exc:
            raise GraphError(f"pass {name} broke the graph: {exc}") from None
    return graph
