"""``OpTable``: one backend's or analysis' ``{op type -> function}`` dispatch.

Backends list every op type: an entry, or the reason they cannot handle it (``unsupported``); a type in neither raises
``UnsupportedOpError`` naming the op, the node and the consumer, and ``tests/ir/test_op_tables.py`` fails on it.
Analyses may instead give a ``by_traits`` rule: a function of the op's class that picks the entry from its traits
(synapse, neuron group, ...) for every type without an entry of its own, so an op whose traits say all an analysis
needs touches no analysis. A writer for a narrow format may give ``otherwise``: the reason it cannot handle any type
without an entry.
"""
from __future__ import annotations

from typing import Callable

from ..errors import UnsupportedOpError
from .ops import OP_TYPES, Op


class OpTable:
    def __init__(self, consumer: str, entries: dict[type[Op], Callable],
                 unsupported: dict[type[Op], str] | None = None,
                 by_traits: Callable[[type[Op]], Callable] | None = None, otherwise: str | None = None):
        overlap = set(entries) & set(unsupported or {})
        if overlap:
            raise ValueError(f"{consumer}: {sorted(t.__name__ for t in overlap)} both handled and unsupported")
        self.consumer = consumer
        self.entries = dict(entries)
        self.unsupported = dict(unsupported or {})
        self.by_traits = by_traits
        self.otherwise = otherwise

    def lookup(self, cls: type[Op]) -> Callable | None:
        fn = self.entries.get(cls)
        if fn is None and self.by_traits is not None and cls not in self.unsupported:
            fn = self.by_traits(cls)
        return fn

    def __call__(self, node) -> Callable:
        """The function for ``node``'s op."""
        fn = self.lookup(type(node.op))
        if fn is None:
            raise UnsupportedOpError(self.consumer, node.op.type, node.name, self.unsupported.get(
                type(node.op), self.otherwise or "no entry in its op table"))
        return fn

    def handles(self, op: Op) -> bool:
        return self.lookup(type(op)) is not None

    def covered(self) -> set[type[Op]]:
        """The op types this table answers for: an entry (its own or by traits) or a stated reason."""
        return {cls for cls in OP_TYPES.values()
                if cls in self.unsupported or self.otherwise or self.lookup(cls) is not None}
