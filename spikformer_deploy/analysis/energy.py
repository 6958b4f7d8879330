"""Energy per inference from the simulator's counters, per layer and in total, for each kind of profile.

Conventions (DESIGN.md §4):
- ``paper`` (per-op profiles): the Spikformer paper's E = E_MAC * MACs(first conv) + E_AC * SOPs with SOPs = input
  firing rate x dense MACs; the head's MACs are added as MACs, max-pool and attention are free, as in the paper.
- ``corrected`` (per-op profiles): synapses reading non-binary values (the analog image, the residual stream) pay
  E_MAC per synaptic event; binary inputs pay E_AC per event-driven SOP; the attention pays E_AC per addition
  (popcounts and spike-gated sums) — the spirit of Spikingformer's recount.
- ``loihi`` (loihi profiles): synaptic ops x E_synop, neuron updates x E_neuron (all costed as active: with fan-in
  >= 9 and input rates of a few percent nearly every neuron receives input every step), output spikes x (tile
  spike + mean hops x hop energy), attention and head on the embedded / host cores x E_host_op, and static power x
  chips x T x estimated step time.
- ``gpu`` (gpu profiles): analytic: the float model's dense FLOPs at ``achievable_fraction`` of the BF16 peak, at
  TDP; the idle-subtracted figure uses TDP - idle power.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, OpTable
from ..ir.ops import Head, OrPool, SpikingAttention
from .layers import LayerStats
from .profiles import Profile
from .timing import latency, step_time


@dataclass
class EnergyEstimate:
    profile: str
    convention: str
    per_layer: LayerStats[str, float]  # J per inference; includes pseudo-layers such as "static"
    assumptions: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.per_layer.values()))

    def to_dict(self) -> dict:
        return {"profile": self.profile, "convention": self.convention, "total_J": self.total,
                "per_layer_J": dict(self.per_layer), "assumptions": list(self.assumptions), **self.extra}


def paper_energy_from_totals(sops: float, first_layer_macs: float, profile: Profile) -> float:
    """The paper's formula on published totals: E_AC * SOPs + E_MAC * MACs(first conv)."""
    return profile["e_ac"] * sops + profile["e_mac"] * first_layer_macs


def _free(r: LayerStats, profile: Profile, *context) -> None:
    """Not costed in this convention (no entry in per_layer)."""


def _per_layer(table: OpTable, rows: list[LayerStats], graph: Graph, profile: Profile, *context) -> dict[str, float]:
    costs = {r.name: table(graph.nodes[r.name])(r, profile, *context) for r in rows}
    return {name: e for name, e in costs.items() if e is not None}


# -- paper: E_MAC x MACs + E_AC x (input rate x dense MACs) on synapses and the head --------------------------------
def _paper_synapse(r: LayerStats, profile: Profile) -> float:
    return profile["e_mac"] * r.macs + profile["e_ac"] * r.sops_paper


PAPER_COST = OpTable("the paper energy convention", {Head: _paper_synapse},
                     by_traits=lambda cls: _paper_synapse if cls.synapse else _free)


def paper_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    return EnergyEstimate(profile.name, "paper", _per_layer(PAPER_COST, rows, graph, profile), [
        "SOPs = input firing rate x dense MACs per layer (Spikformer's convention); first conv and head as MACs",
        "max-pool and the attention products are not counted (as in the paper)"])


# -- corrected: MACs where the input is not binary, ACs per event-driven op ---------------------------------------
def _corrected_synapse(r: LayerStats, profile: Profile) -> float:
    if r.analog_input:
        return profile["e_mac"] * r.macs
    if not r.binary_input:
        return profile["e_mac"] * r.event_synops
    return profile["e_ac"] * r.sops


def _corrected_attention(r: LayerStats, profile: Profile) -> float:
    return profile["e_ac"] * r.adds


def _corrected_head(r: LayerStats, profile: Profile) -> float:
    return profile["e_mac"] * r.macs + profile["e_ac"] * r.adds


CORRECTED_COST = OpTable("the corrected energy convention", {
    SpikingAttention: _corrected_attention, Head: _corrected_head},
    by_traits=lambda cls: _corrected_synapse if cls.synapse else _free)


def corrected_energy(rows: list[LayerStats], graph: Graph, profile: Profile) -> EnergyEstimate:
    return EnergyEstimate(profile.name, "corrected", _per_layer(CORRECTED_COST, rows, graph, profile), [
        "non-binary inputs (analog image, residual stream values 0..depth+2) cost a MAC per synaptic event",
        "attention: one accumulate per popcount / spike-gated addition (ANDs not costed)"])


# -- loihi: synaptic ops, neuron updates, spike traffic, host ops and static power --------------------------------
def _loihi_synapse(r: LayerStats, profile: Profile) -> float:
    return profile["e_synop"] * r.event_synops


def _loihi_neuron(r: LayerStats, profile: Profile) -> float:
    e_spike = profile["e_spike_tile"] + profile["mean_hops"] * (profile["e_hop_ew"] + profile["e_hop_ns"]) / 2
    return profile["e_neuron_active"] * r.neuron_updates + e_spike * r.spikes


def _loihi_pool(r: LayerStats, profile: Profile) -> float:
    return _loihi_neuron(r, profile) + profile["e_synop"] * (r.event_synops or 0.0)


def _loihi_attention(r: LayerStats, profile: Profile) -> float:
    return profile["e_host_op"] * (r.ands + r.adds)


def _loihi_head(r: LayerStats, profile: Profile) -> float:
    return profile["e_host_op"] * (r.macs + r.adds)


LOIHI_COST = OpTable("the Loihi energy model", {
    OrPool: _loihi_pool, SpikingAttention: _loihi_attention, Head: _loihi_head},
    by_traits=lambda cls: _loihi_synapse if cls.synapse else _loihi_neuron if cls.neuron_group else _free)


def loihi_energy(rows: list[LayerStats], graph: Graph, profile: Profile, mapping: dict) -> EnergyEstimate:
    """``mapping``: ``{"cores": {group: cores}, "total_cores", "chips"}``, from the feasibility mapping."""
    per_layer = _per_layer(LOIHI_COST, rows, graph, profile)
    t_step, _ = step_time(graph, rows, mapping["cores"], profile)
    steps = graph.steps
    per_layer["static"] = profile["static_power_chip"] * mapping["chips"] * steps * t_step
    return EnergyEstimate(profile.name, "loihi", per_layer, [
        "neuron updates all costed as active", "graded spikes: one synaptic op per synapse whatever the payload",
        f"spike traffic: tile spike + {profile.constants['mean_hops'].value:g} mesh hops per output spike",
        "attention and head on the embedded x86 / host at e_host_op per AND, add or MAC",
        f"mapping: {mapping['total_cores']} cores (feasibility mapping); step time = slowest group's per-core "
        f"synaptic ops and neuron updates (analysis.timing, as the report)",
        f"static: {profile['static_power_chip']:g} W/chip x {mapping['chips']} chip(s) x {steps} steps x step time "
        f"(pipelined: an inference holds the chip for T steps)"],
        extra={"chips": mapping["chips"], "cores": mapping["total_cores"], "step_time_s": t_step,
               "latency_s": latency(graph, t_step)["latency_s"]})


def gpu_energy(rows: list[LayerStats], profile: Profile) -> EnergyEstimate:
    flops = 2.0 * sum(r.dense_macs for r in rows)
    rate = profile["peak_bf16"] * profile["achievable_fraction"]
    seconds = flops / rate
    per_layer = {r.name: profile["tdp"] * 2.0 * r.dense_macs / rate for r in rows if r.dense_macs}
    return EnergyEstimate(profile.name, "gpu_analytic", per_layer, [
        f"{flops / 1e9:.3f} GFLOP per inference (dense-equivalent float model, T unrolled)",
        f"achieved {rate / 1e12:.1f} TFLOP/s = {profile.constants['achievable_fraction'].value:g} x BF16 peak "
        f"{profile.constants['peak_bf16'].value:g} TFLOP/s (assumption)",
        f"power = TDP {profile['tdp']:g} W while computing; idle-subtracted uses TDP - idle "
        f"({profile['idle_power']:g} W)"],
        extra={"flops": flops, "images_per_s": 1.0 / seconds if seconds else None,
               "idle_subtracted_J": (profile["tdp"] - profile["idle_power"]) * seconds, "kind": "estimate"})


def estimate(rows: list[LayerStats], graph: Graph, profile: Profile, mapping: dict | None = None) -> list[EnergyEstimate]:
    """Every convention that applies to the profile's model (loihi profiles need ``mapping``: see
    ``loihi_energy``)."""
    if profile.model == "per_op":
        return [paper_energy(rows, graph, profile), corrected_energy(rows, graph, profile)]
    if profile.model == "loihi":
        if mapping is None:
            raise ValueError(f"the {profile.name} energy model needs the core mapping (analysis.feasibility)")
        return [loihi_energy(rows, graph, profile, mapping)]
    return [gpu_energy(rows, profile)]
