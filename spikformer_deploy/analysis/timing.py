"""The one Loihi step-time model, read by the energy model and the feasibility report alike.

A step ends when the slowest core is done: per neuron group, its share of the synaptic ops of one step
(``event_synops`` per inference / T, over its cores) times ``t_synop``, plus its share of neuron updates
(``ceil(neurons / cores)``) times ``t_neuron``; plus a fixed per-step overhead ``t_step_overhead`` (barrier
synchronisation, host I/O). Latency per inference = (T + pipeline depth) steps.
"""
from __future__ import annotations

import math

from ..ir import Graph
from .layers import LayerStats
from .profiles import Profile


def step_time(graph: Graph, rows: list[LayerStats], cores: dict[str, int], profile: Profile) -> tuple[float, str | None]:
    """(seconds per step, slowest neuron group); ``cores``: cores per neuron group (the feasibility mapping)."""
    by_name = {r.name: r for r in rows}
    slowest, step = None, 0.0  # the busiest group, before the fixed overhead
    for name, n_cores in cores.items():
        node = graph.nodes[name]
        source = graph.nodes[node.inputs[0]]
        feeding = by_name.get(source.name if source.op.synapse else name)
        synops = (feeding.event_synops or 0.0) / graph.steps if feeding else 0.0
        neurons = int(math.prod(node.shape))
        t = synops / n_cores * profile["t_synop"] + math.ceil(neurons / n_cores) * profile["t_neuron"]
        if t > step:
            step, slowest = t, name
    return step + profile["t_step_overhead"], slowest


def latency(graph: Graph, step: float) -> dict:
    """Steps per inference and the latency and throughput they give at ``step`` seconds per step."""
    depth = max(graph.pipeline_depths().values())
    steps = graph.steps + depth
    return {"time_steps": steps, "pipeline_depth": depth, "step_latency_s": step, "latency_s": steps * step,
            "inferences_per_s": 1.0 / (steps * step) if step else None,
            "pipelined_inferences_per_s": 1.0 / (graph.steps * step) if step else None}
