"""Per-layer table of the simulator's counters (per inference), with the 24-bit overflow margin."""
from __future__ import annotations

import math

import numpy as np

from ..counters import Counters
from ..ir import Graph
from ..ir.ops import LIF, STATE_BITS, Add, Conv2d, Dense, Flatten, Head, Input, LoihiLIF, OrPool, SpikingAttention

STATE_MAX = 2 ** (STATE_BITS - 1) - 1


def overflow_margin_bits(max_abs: float) -> float | None:
    """Spare bits between the largest |state| seen and the 24-bit limit (None: state never left 0)."""
    return None if max_abs <= 0 else math.log2(STATE_MAX / max_abs)


def layer_rows(graph: Graph, counters: Counters) -> list[dict]:
    """One row per node that does work: counts per inference (averaged over the samples run)."""
    rows = []
    steps = counters.T
    bounds = graph.value_bounds()
    for node in graph.nodes.values():
        if isinstance(node.op, (Input, Flatten)):
            continue
        c = {name: counters.total(node.name, name) for name in counters.counts.get(node.name, {})}
        m = counters.maxima.get(node.name, {})
        row = {"name": node.name, "op": node.op.type, "shape": list(node.shape), "neurons": int(np.prod(node.shape)),
               **{k: c.get(k, 0.0) for k in ("in_events", "sops", "sops_paper", "macs", "dense_macs", "ands",
                                            "adds", "neuron_updates", "spikes")}}
        if isinstance(node.op, (LIF, LoihiLIF, OrPool)):
            row["firing_rate"] = row["spikes"] / row["neuron_updates"] if row["neuron_updates"] else 0.0
        if isinstance(node.op, (Conv2d, Dense, Head, SpikingAttention)):
            elems = int(np.prod(graph.nodes[node.inputs[0]].shape)) * len(node.inputs) * steps
            row["input_rate"] = c.get("in_events", 0.0) / elems if elems else 0.0
        if isinstance(node.op, (Conv2d, Dense, OrPool)):
            source = graph.nodes[node.inputs[0]]
            row["analog_input"] = isinstance(source.op, Input) and source.op.kind == "image"
            row["binary_input"] = bounds[source.name] == 1
            # synaptic events whatever their payload: a graded spike drives each synapse once
            row["event_synops"] = (row["macs"] if row["analog_input"] else
                                   row["in_events"] * node.op.weight.shape[0] if isinstance(node.op, Dense) else
                                   row["sops"] if row["binary_input"] else
                                   row["sops"] * row["in_events"] / max(c.get("in_value", 0.0), 1e-300))
        if isinstance(node.op, LoihiLIF):
            margins = [overflow_margin_bits(m.get(k, 0.0)) for k in ("max_abs_u", "max_abs_v")]
            margins = [x for x in margins if x is not None]
            row["overflow_margin_bits"] = min(margins) if margins else None
            row["max_abs_u"], row["max_abs_v"] = m.get("max_abs_u", 0.0), m.get("max_abs_v", 0.0)
        if isinstance(node.op, Add):
            row["max_value"] = len(node.inputs)
        rows.append(row)
    return rows


def totals(rows: list[dict]) -> dict:
    keys = ("sops", "sops_paper", "macs", "dense_macs", "ands", "adds", "neuron_updates", "spikes")
    out = {k: float(sum(r[k] for r in rows)) for k in keys}
    margins = [r["overflow_margin_bits"] for r in rows if r.get("overflow_margin_bits") is not None]
    out["min_overflow_margin_bits"] = min(margins) if margins else None
    return out
