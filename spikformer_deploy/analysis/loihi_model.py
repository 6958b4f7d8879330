"""The one Loihi cost model: step time and energy per time step from one step's activity. The same functions cost a
deploy graph (its per-layer counters and the feasibility mapping) and a measured run's hardware counters, so the
profile fitted on the measured runs (``spikformer_deploy.calibration``) is the profile the tool applies.

Step time (``step_time``), terms in seconds:
- ``neurocores``: the busiest neurocore's max(synaptic ops x ``t_synop``, neuron microcode passes x ``t_neuron``). The
  synaptic and neuron phases of a core overlap: Intel's own latency model takes their maximum, not their sum;
- ``embedded``: the ops placed on the embedded x86 cores (the attention) x ``t_embedded_op``, shared evenly over every
  chip's embedded cores; it runs beside the neurocores, so compute = max(neurocores, embedded);
- ``barrier``: ``t_barrier``, the synchronisation that ends every step, a serial phase;
- ``interchip``: the busiest chip's outgoing spike bits x ``t_interchip_bit`` (its bridge link serialises them; as
  Intel's routing model, which sums a chip's remote spikes and takes the busiest chip), a serial phase too.
  step = max(neurocores, embedded) + barrier + interchip. The measured multi-chip run (YOLO-KP, 9 chips) takes 2.9x
  Intel's max(core, routing) estimate, so the phases add there; the single-chip runs fix the compute term.
Dynamic energy per step (``dynamic_energy``): ``e_synop`` x synaptic ops + ``e_neuron_active`` x microcode passes +
  spike routing inside the chips (tile spike + mean hops) + ``e_host_op`` x embedded ops + ``e_interchip_bit`` x bits
  across chips. Static energy per step: ``static_power_chip`` x chips x step time.
A neuron update is ``neuron_passes`` microcode passes (the hardware's dendrite updates; Loihi 1's published energies
are per update: 1).

Placement (``place_groups``): the mapped neuron groups in graph order, each on consecutive cores, fill chips of
``cores_per_chip`` cores one after the other (lava's compiler numbers cores this way: YOLO-KP's 1,022 cores sit on
chips 0..8). Traffic (``interchip_traffic``): a spike from a core on chip c lands on one place of each destination
group, which lies on chip d with the share q_d of the destination's cores there (spatial locality of convolutions and
token-wise synapses); so a source with core shares p_c sends p_c x q_d of its spikes from chip c to chip d != c.
Binary spikes are ``spike_bits_binary`` bits on the link, graded ones ``spike_bits_graded``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Graph
from ..ir.ops import ATTENTION_STAGES, Head, Input, StreamSum
from .layers import LayerStats
from .profiles import Profile

WORD_BITS = 32  # an embedded core ANDs 32 spike pairs per instruction


@dataclass(frozen=True)
class StepActivity:
    """One time step's work, all counts per step."""

    synops: float  # synaptic ops, every core
    neuron_passes: float  # neuron microcode passes (the hardware counter's dendrite updates)
    spikes: float  # spikes routed inside the chips
    core_load: tuple[tuple[float, float], ...]  # (synaptic ops, neuron passes) of one core of each group
    chips: int
    embedded_ops: float = 0.0  # ops on the embedded x86 cores
    chip_out_bits: tuple[float, ...] = ()  # spike bits leaving each chip over its bridge link


def core_times(act: StepActivity, profile: Profile) -> list[float]:
    """Seconds per step of one core of each group: its synaptic and neuron phases overlap."""
    return [max(s * profile["t_synop"], p * profile["t_neuron"]) for s, p in act.core_load]


def embedded_time(ops: float, chips: int, profile: Profile) -> float:
    """Seconds per step of ``ops`` embedded-core instructions shared over every chip's embedded cores."""
    return ops * profile["t_embedded_op"] / (profile["embedded_cores_per_chip"] * chips)


def step_time(act: StepActivity, profile: Profile) -> tuple[float, dict[str, float], str]:
    """(seconds per step, the terms, the term that bounds the step)."""
    neurocores = max(core_times(act, profile), default=0.0)
    embedded = embedded_time(act.embedded_ops, act.chips, profile)
    terms = {"neurocores": neurocores, "embedded": embedded, "barrier": profile["t_barrier"],
             "interchip": max(act.chip_out_bits, default=0.0) * profile["t_interchip_bit"]}
    bound = max(terms, key=terms.get)
    return max(neurocores, embedded) + terms["barrier"] + terms["interchip"], terms, bound


def spike_energy(profile: Profile) -> float:
    """One spike inside a chip: into its tile, then ``mean_hops`` mesh hops (E-W and N-S alike)."""
    return profile["e_spike_tile"] + profile["mean_hops"] * (profile["e_hop_ew"] + profile["e_hop_ns"]) / 2


def dynamic_energy(act: StepActivity, profile: Profile) -> dict[str, float]:
    """Joules per step by term."""
    return {"synops": profile["e_synop"] * act.synops, "neurons": profile["e_neuron_active"] * act.neuron_passes,
            "spikes": spike_energy(profile) * act.spikes, "embedded": profile["e_host_op"] * act.embedded_ops,
            "interchip": profile["e_interchip_bit"] * sum(act.chip_out_bits)}


# -- a deploy graph's activity -----------------------------------------------------------------------------------
def embedded_ops(r: LayerStats) -> float:
    """The attention's instructions on an embedded core, per inference: word-wide ANDs plus additions."""
    return r.ands / WORD_BITS + r.adds


def place_groups(groups: list[tuple[str, int]], cores_per_chip: int) -> dict[str, dict[int, int]]:
    """{group: {chip: cores}}: the (name, cores) groups in order on consecutive cores, chips filled one after
    another."""
    placed, next_core = {}, 0
    for name, cores in groups:
        shares: dict[int, int] = {}
        for core in range(next_core, next_core + cores):
            shares[core // cores_per_chip] = shares.get(core // cores_per_chip, 0) + 1
        placed[name], next_core = shares, next_core + cores
    return placed


def source_groups(graph: Graph, name: str) -> list[str]:
    """The neuron groups whose spikes reach node ``name`` through relays (residual sums, reshapes); the input and
    the embedded ops (the host and the embedded cores) are no neuron groups."""
    node = graph.nodes[name]
    if node.op.neuron_group:
        return [name]
    if node.op.embedded or isinstance(node.op, (Input, Head)):
        return []
    return list(dict.fromkeys(s for i in node.inputs for s in source_groups(graph, i)))


def split_flow(placed: dict, source: str, destination: str, spikes: float, payload: str) -> list[dict]:
    """The spikes per step from ``source`` to ``destination`` that cross chips, chip pair by chip pair: a share p_c
    of the source's cores on chip c sends p_c x q_d of them to chip d != c (q_d: the destination's share there)."""
    src, dst = placed[source], placed[destination]
    n_src, n_dst = sum(src.values()), sum(dst.values())
    return [{"from_chip": c, "to_chip": d, "source": source, "destination": destination,
             "spikes_per_step": spikes * a / n_src * b / n_dst, "payload": payload}
            for c, a in src.items() for d, b in dst.items() if c != d and spikes]


def interchip_traffic(graph: Graph, rows: list[LayerStats], mapping: dict, placed: dict) -> list[dict]:
    """Spikes per step from each chip to each other chip, by source and destination group (binary spikes, or graded
    ones from the relays of a real-valued stream and the attention's count and product neurons)."""
    by_name = {r.name: r for r in rows}
    flows = []
    for g in mapping["groups"]:
        node = graph.nodes[g.name]
        # a group on its own synapses (the attention on neurocores) hears every group its inputs come from
        own = isinstance(node.op, ATTENTION_STAGES)
        sources = source_groups(graph, graph.nodes[g.synapse_node].inputs[0]) if g.synapse_node else \
            [s for i in node.inputs for s in source_groups(graph, i)] if own else []
        # the real-valued stream's graded spikes also reach its readers and the next relay directly
        sources += [s for i in graph.nodes[g.name].inputs if not graph.nodes[i].op.synapse
                    for s in source_groups(graph, i) if isinstance(graph.nodes[s].op, StreamSum)]
        for src in dict.fromkeys(sources):
            spikes = by_name[src].spikes / graph.steps if src in by_name else 0.0
            payload = "binary" if graph.nodes[src].op.spiking else "graded"  # stream relays, counts, products
            flows += split_flow(placed, src, g.name, spikes, payload)
    return flows


def chip_out_bits(flows: list[dict], chips: int, profile: Profile) -> tuple[float, ...]:
    bits = [0.0] * chips
    for f in flows:
        bits[f["from_chip"]] += f["spikes_per_step"] * profile[f"spike_bits_{f['payload']}"]
    return tuple(bits)


def graph_activity(graph: Graph, rows: list[LayerStats], mapping: dict, profile: Profile) -> tuple[StepActivity, list]:
    """(the graph's step activity on the mapping, its inter-chip flows): counters per inference / T."""
    T, by_name = graph.steps, {r.name: r for r in rows}
    passes = profile["neuron_passes"]
    load = []
    for g in mapping["groups"]:
        # the synapse feeding the group, and the group's own (an OR pool's, identity synapses from a stream relay)
        own = [by_name[n] for n in dict.fromkeys((g.synapse_node, g.name)) if n in by_name]
        synops = sum(r.event_synops or 0.0 for r in own) / T
        load.append((synops / g.cores, math.ceil(g.neurons / g.cores) * passes))
    placed = place_groups([(g.name, g.cores) for g in mapping["groups"]], int(profile["cores_per_chip"]))
    flows = interchip_traffic(graph, rows, mapping, placed)
    groups = [r for r in rows if graph.nodes[r.name].op.neuron_group]
    act = StepActivity(
        synops=sum(r.event_synops or 0.0 for r in rows) / T,
        neuron_passes=sum(r.neuron_updates for r in groups) * passes / T,
        spikes=sum(r.spikes for r in groups) / T, core_load=tuple(load), chips=mapping["chips"],
        embedded_ops=sum(embedded_ops(r) for r in rows if graph.nodes[r.name].op.embedded) / T,
        chip_out_bits=chip_out_bits(flows, mapping["chips"], profile))
    return act, flows


def boundary_table(flows: list[dict], profile: Profile) -> list[dict]:
    """Spikes and bits per step across each chip boundary (from -> to), busiest first."""
    pairs: dict[tuple[int, int], dict] = {}
    for f in flows:
        row = pairs.setdefault((f["from_chip"], f["to_chip"]), {"from_chip": f["from_chip"], "to_chip": f["to_chip"],
                                                                 "spikes_per_step": 0.0, "bits_per_step": 0.0})
        row["spikes_per_step"] += f["spikes_per_step"]
        row["bits_per_step"] += f["spikes_per_step"] * profile[f"spike_bits_{f['payload']}"]
    return sorted(pairs.values(), key=lambda r: (-r["bits_per_step"], r["from_chip"], r["to_chip"]))


def latency(graph: Graph, step: float) -> dict:
    """Steps per inference and the latency and throughput they give at ``step`` seconds per step."""
    depth = max(graph.pipeline_depths().values())
    steps = graph.steps + depth
    return {"time_steps": steps, "pipeline_depth": depth, "step_latency_s": step, "latency_s": steps * step,
            "inferences_per_s": 1.0 / (steps * step) if step else None,
            "pipelined_inferences_per_s": 1.0 / (graph.steps * step) if step else None}
