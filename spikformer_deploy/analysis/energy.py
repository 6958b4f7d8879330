"""Energy per inference from the simulator's counters, per layer and in total, for each kind of profile.

Conventions (DESIGN.md §4):
- ``paper`` (per-op profiles): the Spikformer paper's E = E_MAC * MACs(first conv) + E_AC * SOPs with SOPs = input
  firing rate x dense MACs; the head's MACs are added as MACs, max-pool and attention are free, as in the paper.
- ``corrected`` (per-op profiles): synapses reading non-binary values (the analog image, the residual stream) pay
  E_MAC per synaptic event; binary inputs pay E_AC per event-driven SOP; the attention pays E_AC per addition
  (popcounts and spike-gated sums) — the spirit of Spikingformer's recount.
- ``memory_aware`` (per-op profiles): the corrected operations plus memory at Horowitz's SRAM energies — a weight
  read per synaptic op or MAC, a membrane read and write per neuron update (the data-movement critique of
  arXiv 2409.08290: an SNN must fire sparsely to beat a quantized ANN once memory is counted).
- ``int8_ann`` (per-op profiles): the same topology as an INT8 ANN (one pass, ReLU, dense MACs), same memory model.
- ``loihi`` (loihi profiles): ``analysis.loihi_model`` layer by layer: synaptic ops x E_synop, neuron updates x
  microcode passes x E_neuron (all costed as active: with fan-in >= 9 and input rates of a few percent nearly every
  neuron receives input every step), output spikes x (tile spike + mean hops x hop energy), the attention's word
  ANDs and adds on the embedded cores and the head on the host x E_host_op, spikes between chips x bits x
  E_interchip_bit, and static power x chips x T x step time. Profiles with ranged constants give the total's range.
- ``gpu_analytic`` (gpu profiles): the float model (T unrolled) per layer as max(FLOPs at an achievable share of the
  BF16 peak, bytes at the memory bandwidth) plus kernel launches x launch latency, at batch 1 and at a throughput
  batch; power between idle and TDP by the busy share of the time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, OpTable
from ..ir.ops import AttentionSum, Head, MaxPool, OrPool, SpikingAttention
from .conventions import Count, ours, spikformer_paper
from .layers import LayerStats
from .profiles import BOUNDS, Profile
from .loihi_model import (dynamic_energy, embedded_ops, graph_activity, latency, spike_energy,
                          step_time)


@dataclass
class EnergyEstimate:
    profile: str
    convention: str
    per_layer: dict[str, float]  # J per inference; includes pseudo-layers such as "static"
    assumptions: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    layer_ranges: dict[str, tuple[float, float]] | None = None  # per layer J, every constant at its low / high end

    @property
    def total(self) -> float:
        return float(sum(self.per_layer.values()))

    @property
    def range(self) -> tuple[float, float] | None:
        """The total with every constant at the low / high end of its range (profiles with ranges)."""
        if not self.layer_ranges:
            return None
        return tuple(float(sum(v[i] for v in self.layer_ranges.values())) for i in (0, 1))

    def to_dict(self) -> dict:
        return {"profile": self.profile, "convention": self.convention, "total_J": self.total,
                **({"range_J": list(self.range)} if self.range else {}),
                **({"per_layer_range_J": {k: list(v) for k, v in self.layer_ranges.items()}}
                   if self.layer_ranges else {}),
                "per_layer_J": dict(self.per_layer), "assumptions": list(self.assumptions), **self.extra}


def paper_energy_from_totals(sops: float, first_layer_macs: float, profile: Profile) -> float:
    """The paper's formula on published totals: E_AC * SOPs + E_MAC * MACs(first conv)."""
    return profile["e_ac"] * sops + profile["e_mac"] * first_layer_macs


def _free(r: LayerStats, profile: Profile, *context) -> None:
    """Not costed in this convention (no entry in per_layer)."""


def _per_layer(table: OpTable, rows: list[LayerStats], graph: Graph, profile: Profile, *context) -> dict[str, float]:
    costs = {r.name: table(graph.nodes[r.name])(r, profile, *context) for r in rows}
    return {name: e for name, e in costs.items() if e is not None}


# -- paper and corrected: the counting conventions' MACs and ACs (analysis.conventions) at E_MAC and E_AC ------------
def _priced(counts: dict[str, Count], profile: Profile) -> dict[str, float]:
    return {name: profile["e_mac"] * c.macs + profile["e_ac"] * c.acs for name, c in counts.items()}


def paper_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    return EnergyEstimate(profile.name, "paper", _priced(spikformer_paper(rows, graph).per_layer, profile), [
        "SOPs = input firing rate x dense MACs per layer (Spikformer's convention); first conv and head as MACs",
        "max-pool and the attention products are not counted (as in the paper)"])


def corrected_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    return EnergyEstimate(profile.name, "corrected", _priced(ours(rows, graph).per_layer, profile), [
        "non-binary inputs (analog image, residual stream values 0..depth+2) cost a MAC per synaptic event",
        "attention (and SDSA, graded max-pools, token means): one accumulate per popcount / spike-gated addition / "
        "comparison (ANDs not costed); real-valued residual streams: one accumulate per non-zero input"])


# -- loihi: the cost model of analysis.loihi_model, layer by layer --------------------------------------------------
def _loihi_synapse(r: LayerStats, profile: Profile) -> float:
    return profile["e_synop"] * r.event_synops


def _loihi_neuron(r: LayerStats, profile: Profile) -> float:
    """Updates and spikes, plus the group's own synapses where it has any (an OR pool's, identity synapses from a
    real-valued stream's relay)."""
    return (profile["e_neuron_active"] * r.neuron_updates * profile["neuron_passes"] + spike_energy(profile) * r.spikes
            + profile["e_synop"] * (r.event_synops or 0.0))


def _loihi_attention(r: LayerStats, profile: Profile) -> float:
    return profile["e_host_op"] * embedded_ops(r)


def _loihi_head(r: LayerStats, profile: Profile) -> float:
    return profile["e_host_op"] * (r.macs + r.adds)


LOIHI_COST = OpTable("the Loihi energy model", {Head: _loihi_head, AttentionSum: _loihi_synapse},
                     by_traits=lambda cls: _loihi_synapse if cls.synapse else _loihi_attention if cls.embedded else
                     _loihi_neuron if cls.neuron_group else _free)


def _loihi_per_layer(rows: list[LayerStats], graph: Graph, profile: Profile, mapping: dict):
    per_layer = _per_layer(LOIHI_COST, rows, graph, profile)
    act, _ = graph_activity(graph, rows, mapping, profile)
    t_step, terms, bound = step_time(act, profile)
    per_layer["interchip"] = graph.steps * dynamic_energy(act, profile)["interchip"]
    per_layer["static"] = profile["static_power_chip"] * mapping["chips"] * graph.steps * t_step
    return per_layer, t_step, terms, bound


def loihi_energy(rows: list[LayerStats], graph: Graph, profile: Profile, mapping: dict) -> EnergyEstimate:
    """``mapping``: the feasibility mapping (``analysis.feasibility.map_network``). A profile whose constants carry
    ranges gives the total's range too (every constant at its low, then its high end)."""
    per_layer, t_step, terms, bound = _loihi_per_layer(rows, graph, profile, mapping)
    ranges = None
    if profile.has_ranges:
        low, high = (_loihi_per_layer(rows, graph, profile.at(b), mapping)[0] for b in BOUNDS)
        ranges = {k: (low[k], high[k]) for k in per_layer}
    steps, chips, cores = graph.steps, mapping["chips"], mapping["cores"]
    capacity = chips * int(profile["cores_per_chip"])
    static = per_layer["static"]
    dynamic = sum(per_layer.values()) - static
    split = {"dynamic_J": dynamic, "static_J": static}
    if ranges:
        split.update(dynamic_range_J=[sum(v[i] for k, v in ranges.items() if k != "static") for i in (0, 1)],
                     static_range_J=list(ranges["static"]))
    idle = (f"static > dynamic: {chips} chip(s) idle around {cores} of their {capacity} cores "
            f"({cores / capacity:.0%} used); static power is paid per chip") if static > dynamic else None
    return EnergyEstimate(profile.name, "loihi", per_layer, [
        f"neuron update = {profile.constants['neuron_passes'].value:g} microcode pass(es), each at e_neuron_active; "
        "all neurons costed as active", "graded spikes: one synaptic op per synapse whatever the payload",
        f"spike traffic: tile spike + {profile.constants['mean_hops'].value:g} mesh hops per output spike; spikes "
        "between chips at e_interchip_bit per link bit",
        "attention on the embedded x86 cores, head on the host: e_host_op per word AND, add or MAC",
        f"mapping: {cores} cores on {chips} chip(s); step = max(busiest neurocore, embedded cores) + barrier + "
        f"inter-chip (analysis.loihi_model, as the report); bound by {bound}",
        f"static: {profile['static_power_chip']:g} W/chip x {chips} chip(s) x {steps} steps x step time "
        f"(pipelined: an inference holds the chips for T steps)"] + ([idle] if idle else []),
        extra={"chips": chips, "cores": cores, "step_time_s": t_step, "step_terms_s": terms, "bound_by": bound,
               "latency_s": latency(graph, t_step)["latency_s"], **split}, layer_ranges=ranges)


# -- memory-aware: the corrected op counts plus weight fetches and neuron-state traffic at SRAM energies -------------
def _weight_read(profile: Profile) -> float:
    """One 8-bit weight: a quarter of a 64-bit word read from an 8 KB SRAM (Horowitz)."""
    return profile["e_sram_read_64b"] / 8


def _state_read_write(profile: Profile) -> float:
    """A 32-bit neuron state read and written back: two half-word reads' worth of a 64-bit SRAM access."""
    return profile["e_sram_read_64b"]


def _memory_synapse(r: LayerStats, profile: Profile, counted: dict[str, float]) -> float:
    ops = r.macs if r.analog_input else r.event_synops
    return counted[r.name] + _weight_read(profile) * ops


def _memory_neuron(r: LayerStats, profile: Profile, counted: dict[str, float]) -> float:
    return (profile["e_ac"] + _state_read_write(profile)) * r.neuron_updates


def _memory_head(r: LayerStats, profile: Profile, counted: dict[str, float]) -> float:
    return counted[r.name] + _weight_read(profile) * r.macs


def _memory_counted(r: LayerStats, profile: Profile, counted: dict[str, float]) -> float:
    return counted[r.name]


MEMORY_AWARE_COST = OpTable("the memory-aware energy convention",
                            {Head: _memory_head, AttentionSum: _memory_synapse},
                            by_traits=lambda cls: _memory_synapse if cls.synapse else
                            _memory_counted if cls.embedded else _memory_neuron if cls.neuron_group else _free)


def memory_aware_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    counted = _priced(ours(rows, graph).per_layer, profile)
    return EnergyEstimate(profile.name, "memory_aware", _per_layer(MEMORY_AWARE_COST, rows, graph, profile, counted), [
        "the corrected convention's operations, plus memory at Horowitz's SRAM energies (8 KB array): one 8-bit "
        f"weight read per synaptic op or MAC ({_weight_read(profile) * 1e12:g} pJ), one 32-bit membrane read and "
        f"write per neuron update ({_state_read_write(profile) * 1e12:g} pJ) plus its leak/add (E_AC)",
        "spike routing and the attention's operand reads are not costed (a floor, as arXiv 2409.08290's model)"])


# -- INT8 ANN: the same topology as a quantized ANN (ReLU, one pass, dense MACs) with the same memory model --------
def _ann_macs(r: LayerStats, graph: Graph) -> float:
    """Dense MACs of one pass (the SNN's dense-equivalent MACs are T passes)."""
    return r.dense_macs / graph.steps


def _ann_synapse(r: LayerStats, profile: Profile, graph: Graph) -> float:
    # a MAC: 8-bit multiply, 32-bit accumulate, an 8-bit weight and an 8-bit input activation read
    return (profile["e_int8_mult"] + profile["e_int32_add"] + 2 * _weight_read(profile)) * _ann_macs(r, graph)


def _ann_activation(r: LayerStats, profile: Profile, graph: Graph) -> float:
    # ReLU and requantization of each output once (a 32-bit add), written as 8 bits
    return (profile["e_int32_add"] + _weight_read(profile)) * r.neurons


def _ann_free(r: LayerStats, profile: Profile, graph: Graph) -> None:
    """No work of its own in the ANN."""


INT8_ANN_COST = OpTable("the INT8 ANN baseline", {Head: _ann_synapse, OrPool: _ann_activation, MaxPool: _ann_activation},
                        by_traits=lambda cls: _ann_synapse if cls.synapse or cls.embedded else
                        _ann_activation if cls.neuron_group else _ann_free)


def int8_ann_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    return EnergyEstimate(profile.name, "int8_ann", _per_layer(INT8_ANN_COST, rows, graph, profile, graph), [
        "the same network as a quantized ANN: one pass (not T), ReLU for LIF, max-pool for OR, softmax-free "
        "attention products as dense INT8 MACs",
        "MAC = 8-bit multiply + 32-bit add (Horowitz) + an 8-bit weight and an 8-bit input read from SRAM; each "
        "output activation: one 32-bit add (ReLU/requantize) and an 8-bit write"])


# -- GPU: a roofline per layer plus kernel launches, at batch 1 and at a throughput batch -------------------------
BF16_BYTES = 2


def _gpu_kernels(graph: Graph, node) -> int:
    """Kernels the float reference launches per forward for a node (PyTorch eager, spikingjelly's multi-step torch
    backend): a synapse's GEMM, its BatchNorm; a LIF's charge / fire / reset per time step; the attention's two
    batched products and its scale; one elementwise kernel for the rest."""
    op = node.op
    if op.synapse:
        return 2
    if op.spiking and op.neuron_group and not isinstance(op, OrPool):
        return 3 * graph.steps
    return 3 if isinstance(op, SpikingAttention) else 1


def _gpu_layer(graph: Graph, r: LayerStats, batch: int, profile: Profile) -> tuple[float, float]:
    """(busy seconds, bytes) of one layer for ``batch`` inputs: max of compute at the achievable BF16 rate and
    memory traffic (weights once, activations in and out for every step and input) at the memory bandwidth."""
    node = graph.nodes[r.name]
    weights = sum(a.size for a in node.op.arrays().values()) * BF16_BYTES if (node.op.synapse or
                                                                            isinstance(node.op, Head)) else 0
    elements = sum(int(np.prod(graph.nodes[i].shape)) for i in node.inputs) + int(np.prod(node.shape))
    traffic = weights + BF16_BYTES * elements * graph.steps * batch
    flops = 2.0 * r.dense_macs * batch
    return max(flops / (profile["peak_bf16"] * profile["achievable_fraction"]),
               traffic / profile["mem_bandwidth"]), traffic


def gpu_run(rows: list[LayerStats], graph: Graph, profile: Profile, batch: int) -> dict:
    """Time, power and energy per input of the float model at ``batch``: busy time (per-layer roofline) plus
    kernel launches x launch latency; power between idle and TDP by the busy share of the time."""
    busy = {r.name: _gpu_layer(graph, r, batch, profile)[0] for r in rows}
    launches = sum(_gpu_kernels(graph, graph.nodes[r.name]) for r in rows)
    seconds = sum(busy.values()) + launches * profile["launch_latency"]
    utilisation = sum(busy.values()) / seconds if seconds else 0.0
    power = profile["idle_power"] + (profile["tdp"] - profile["idle_power"]) * utilisation
    return {"batch": batch, "seconds": seconds, "launches": launches, "utilisation": utilisation, "power_W": power,
            "J_per_input": power * seconds / batch, "inputs_per_s": batch / seconds if seconds else None,
            "busy_s": busy}


def gpu_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    """Batch 1 (latency-bound: launches dominate) as the estimate; the throughput batch beside it."""
    one = gpu_run(rows, graph, profile, 1)
    many = gpu_run(rows, graph, profile, int(profile["throughput_batch"]))
    # per layer at batch 1: its busy time and its launches at the run's mean power
    per_layer = {r.name: one["power_W"] * (one["busy_s"][r.name] + _gpu_kernels(graph, graph.nodes[r.name])
                                           * profile["launch_latency"]) for r in rows}
    flops = 2.0 * sum(r.dense_macs for r in rows)
    summary = lambda run: {k: v for k, v in run.items() if k != "busy_s"}  # noqa: E731
    return EnergyEstimate(profile.name, "gpu_analytic", per_layer, [
        f"{flops / 1e9:.3f} GFLOP per inference (dense-equivalent float model, T unrolled)",
        f"per layer: max(FLOPs at {profile.constants['achievable_fraction'].value:g} x BF16 peak, bytes (BF16 "
        f"weights once, activations per step) at {profile.constants['mem_bandwidth'].value:g} "
        f"{profile.constants['mem_bandwidth'].unit}), plus {one['launches']} kernel launches x "
        f"{profile.constants['launch_latency'].value:g} µs",
        f"power: idle {profile['idle_power']:g} W + (TDP {profile['tdp']:g} W - idle) x busy share of the time",
        f"batch 1: {one['J_per_input'] * 1e3:.3g} mJ per input ({one['utilisation']:.1%} busy); batch "
        f"{many['batch']}: {many['J_per_input'] * 1e3:.3g} mJ per input ({many['utilisation']:.1%} busy)"],
        extra={"flops": flops, "kind": "estimate", "batch_1": summary(one), "throughput": summary(many)})


def estimate(rows: list[LayerStats], graph: Graph, profile: Profile, mapping: dict | None = None) -> list[EnergyEstimate]:
    """Every convention that applies to the profile's model (loihi profiles need ``mapping``: see
    ``loihi_energy``)."""
    if profile.model == "per_op":
        return [paper_energy(rows, graph, profile), corrected_energy(rows, graph, profile),
                memory_aware_energy(rows, graph, profile), int8_ann_energy(rows, graph, profile)]
    if profile.model == "loihi":
        if mapping is None:
            raise ValueError(f"the {profile.name} energy model needs the core mapping (analysis.feasibility)")
        return [loihi_energy(rows, graph, profile, mapping)]
    return [gpu_energy(rows, graph, profile)]
