"""Per-layer table of the simulator's counters (per inference), with the 24-bit overflow margin."""
from __future__ import annotations

import dataclasses
import math
import weakref
from dataclasses import dataclass

import numpy as np

from ..counters import Counters
from ..ir import Graph, Node, OpTable
from ..ir.ops import (STATE_BITS, Add, AttentionAnd, AttentionCount, AttentionProduct, AttentionSum, BatchNorm, Dense,
                      Head, Input, LoihiLIF, OrPool, StreamSum)

STATE_MAX = 2 ** (STATE_BITS - 1) - 1
_BOUNDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
COUNTS = ("in_events", "sops", "sops_paper", "macs", "dense_macs", "in_bounds_macs", "event_fanout", "pooled_nonzero",
          "ands", "adds", "neuron_updates", "spikes")


@dataclass
class LayerStats:
    """One node's work per inference (averaged over the samples run), from the simulator's counters
    (``counters.COUNTER_DOC``); the optional fields exist only where they mean something (None elsewhere)."""

    name: str
    op: str
    shape: list[int]
    neurons: int
    in_events: float = 0.0
    sops: float = 0.0
    sops_paper: float = 0.0
    macs: float = 0.0
    dense_macs: float = 0.0
    in_bounds_macs: float = 0.0
    event_fanout: float = 0.0
    pooled_nonzero: float = 0.0
    ands: float = 0.0
    adds: float = 0.0
    neuron_updates: float = 0.0
    spikes: float = 0.0
    firing_rate: float | None = None  # neuron groups: spikes per neuron update (graded relays: non-zero outputs)
    input_rate: float | None = None  # synapses, attention, head: non-zero inputs per input element
    analog_input: bool | None = None  # synapses, OR pools: reads the analog image
    binary_input: bool | None = None  # reads binary spikes (not the graded residual stream)
    event_synops: float | None = None  # synaptic events whatever their payload
    overflow_margin_bits: float | None = None  # integer neurons: spare bits below the 24-bit u/v limit
    max_abs_u: float | None = None
    max_abs_v: float | None = None
    max_value: int | None = None  # residual sums: largest value (number of binary sources)

    def to_dict(self) -> dict:
        """JSON view: the fields that apply to this node."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def overflow_margin_bits(max_abs: float) -> float | None:
    """Spare bits between the largest |state| seen and the 24-bit limit (None: state never left 0)."""
    return None if max_abs <= 0 else math.log2(STATE_MAX / max_abs)


def _input_rate(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    elems = int(np.prod(graph.nodes[node.inputs[0]].shape)) * len(node.inputs) * counters.T
    row.input_rate = row.in_events / elems if elems else 0.0


def _synapse_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    _input_rate(graph, node, row, counters)
    _event_synops(graph, node, row, counters)


def _bounds(graph: Graph) -> dict[str, float]:
    """The graph's value bounds, computed once per graph rather than once per row (an analysed graph does not
    change; the weak cache lets it go with the graph)."""
    if graph not in _BOUNDS:
        _BOUNDS[graph] = graph.value_bounds()
    return _BOUNDS[graph]


def _event_synops(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    """Synaptic events whatever their payload: a graded spike drives each synapse once."""
    source = graph.nodes[node.inputs[0]]
    row.analog_input = isinstance(source.op, Input) and source.op.kind == "image"
    row.binary_input = _bounds(graph)[source.name] == 1
    row.event_synops = (row.macs if row.analog_input else
                           row.in_events * node.op.weight.shape[0] if isinstance(node.op, Dense) else
                           row.sops if row.binary_input or graph.on_stream(source.name) else  # counted by event
                           row.sops * row.in_events / max(counters.total(node.name, "in_value"), 1e-300))


def stream_relay(graph: Graph, name: str) -> str | None:
    """The relay (``StreamSum``) whose graded spikes reach node ``name``'s input through reshapes alone, if any."""
    node = graph.nodes[name]
    while not isinstance(node.op, StreamSum):
        if node.op.synapse or node.op.neuron_group or node.op.embedded or not node.inputs:
            return None
        node = graph.nodes[node.inputs[0]]
    return node.name


def _neuron_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    row.firing_rate = row.spikes / row.neuron_updates if row.neuron_updates else 0.0
    # a group reading the real-valued stream (a LIF, the next relay) has one identity synapse per neuron from the
    # relay: each of the relay's graded spikes (its non-zero values) drives one
    relays = [r for r in map(lambda i: stream_relay(graph, i), node.inputs) if r]
    if relays:
        row.event_synops = sum(counters.total(r, "spikes") for r in relays)


def _pool_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    _neuron_row(graph, node, row, counters)
    _event_synops(graph, node, row, counters)


def _integer_neuron_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    _neuron_row(graph, node, row, counters)
    m = counters.maxima.get(node.name, {})
    margins = [overflow_margin_bits(m.get(k, 0.0)) for k in ("max_abs_u", "max_abs_v")]
    margins = [x for x in margins if x is not None]
    row.overflow_margin_bits = min(margins) if margins else None
    row.max_abs_u, row.max_abs_v = m.get("max_abs_u", 0.0), m.get("max_abs_v", 0.0)


def _attention_group_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    """A neuron group of the attention on neurocores and its own synapses (one event per synapse and non-zero
    input)."""
    _neuron_row(graph, node, row, counters)
    row.event_synops = row.sops


def _attention_sum_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    """The graded synapses from the attention's product neurons into attn_lif."""
    _input_rate(graph, node, row, counters)
    row.analog_input, row.binary_input, row.event_synops = False, False, row.sops


def _add_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    row.max_value = len(node.inputs)


def _plain_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    """The counts alone."""


def _no_row(graph: Graph, node: Node, row: LayerStats, counters: Counters) -> None:
    """Moves values without work of its own: no row."""


def _by_traits(cls) -> callable:
    return (_synapse_row if cls.synapse else _input_rate if cls.embedded else
            _neuron_row if cls.spiking or cls.neuron_group else _no_row)


ROWS = OpTable("the per-layer table", {
    LoihiLIF: _integer_neuron_row, OrPool: _pool_row, Add: _add_row, Head: _input_rate, BatchNorm: _plain_row,
    AttentionAnd: _attention_group_row, AttentionCount: _attention_group_row, AttentionProduct: _attention_group_row,
    AttentionSum: _attention_sum_row},
    by_traits=_by_traits)


def layer_rows(graph: Graph, counters: Counters) -> list[LayerStats]:
    """One row per node that does work: counts per inference (averaged over the samples run)."""
    rows = []
    for node in graph.nodes.values():
        if ROWS(node) is _no_row:
            continue
        row = LayerStats(node.name, node.op.type, list(node.shape), int(np.prod(node.shape)),
                         **{k: counters.total(node.name, k) for k in COUNTS})
        ROWS(node)(graph, node, row, counters)
        rows.append(row)
    return rows


def totals(rows: list[LayerStats]) -> dict:
    keys = ("sops", "sops_paper", "macs", "dense_macs", "ands", "adds", "neuron_updates", "spikes")
    out = {k: float(sum(getattr(r, k) for r in rows)) for k in keys}
    margins = [r.overflow_margin_bits for r in rows if r.overflow_margin_bits is not None]
    out["min_overflow_margin_bits"] = min(margins) if margins else None
    return out
