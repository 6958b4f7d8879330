"""Calibrating the Loihi 2 profile on Intel's measured PilotNet LIF benchmark (``calibration/loihi2_pilotnet_lif``).

From the pack: the network (netx) and a real frame, run by the simulator for T = 16 (the benchmark's steps per
inference) with the operation counters; the network mapped by the feasibility mapper; the three measured runs.

- ``static_power_chip`` (measured): the runs' static power; value the median run, range min..max.
- ``t_synop`` (calibrated): the step-time model ``t_step = t_step_overhead + max over neuron groups of
  (synaptic ops per step / cores) t_synop + ceil(neurons / cores) t_neuron`` solved for ``t_synop`` on the measured
  step time, with ``t_neuron`` and ``t_step_overhead`` taken as assumptions: one network cannot separate the three;
  range from the runs' step times.
- ``e_synop`` (calibrated): dynamic energy per step (dynamic power x step time) less the neuron updates at
  ``e_neuron_active`` (an assumption) and the output spikes at the tile-spike and hop energies, divided by the
  synaptic ops per step as our counters count them (every connection of every input event), so that the energy model
  applied to PilotNet gives the measured dynamic energy; range from the runs.
Everything else in the profile keeps its own kind and source. ``scripts/calibrate_loihi2.py`` writes the result into
``hw_profiles/loihi2.yaml``; a test checks that the file equals this function's output.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch
import yaml

from .analysis import layer_rows
from .analysis.energy import spike_energy
from .analysis.feasibility import core_counts, map_network
from .analysis.profiles import Profile
from .analysis.timing import step_time
from .backends.sim import Simulator
from .frontends import read_netx

PACK = Path(__file__).resolve().parent.parent / "calibration" / "loihi2_pilotnet_lif"


def pilotnet_activity(pack: Path = PACK) -> dict:
    """PilotNet on the pack's frame at the benchmark's T: graph, per-layer stats and per-step totals."""
    measured = yaml.safe_load((pack / "measured.yaml").read_text())
    graph = read_netx(pack / "network.net", steps=int(measured["steps_per_inference"]))
    frame = torch.tensor(np.load(pack / "image.npy").transpose(2, 1, 0)[None], dtype=torch.float32)
    rows = layer_rows(graph, Simulator(graph).run(frame).counters)
    T = graph.steps
    return {"graph": graph, "rows": rows, "measured": measured,
            "synops_per_step": sum(r.event_synops or 0.0 for r in rows) / T,
            "updates_per_step": sum(r.neuron_updates for r in rows) / T,
            "spikes_per_step": sum(r.spikes for r in rows) / T}


def _spread(values: list[float]) -> dict:
    """Median, min and max, to 4 significant digits (the measurements carry about that many)."""
    return {k: float(f"{v:.4g}") for k, v in
            (("value", statistics.median(values)), ("low", min(values)), ("high", max(values)))}


def calibrate_loihi2(profile: Profile, pack: Path = PACK) -> dict[str, dict]:
    """The calibrated constants (YAML entries: value, low, high, unit, kind, source) for ``profile``'s loihi2 file."""
    activity = pilotnet_activity(pack)
    graph, rows, measured = activity["graph"], activity["rows"], activity["measured"]
    runs = measured["runs"]
    where = f"{measured['source']}, {runs[0]['date']}..{runs[-1]['date']}"
    mapping = map_network(graph, profile)
    cores = core_counts(mapping)["cores"]
    t_synop = [_solve_t_synop(graph, rows, cores, profile, r["us_per_step"] * 1e-6) * 1e9 for r in runs]
    slowest = step_time(graph, rows, cores, profile)[1]
    per_core = next(r for r in rows if r.name == graph.nodes[slowest].inputs[0]).event_synops / graph.steps \
        / cores[slowest]
    fixed = profile["e_neuron_active"] * activity["updates_per_step"] + spike_energy(profile) * \
        activity["spikes_per_step"]
    e_synop = [(r["dynamic_W"] * r["us_per_step"] * 1e-6 - fixed) / activity["synops_per_step"] * 1e12
               for r in runs]
    counts = (f"PilotNet LIF on the pack's frame, T = {graph.steps}: {activity['synops_per_step']:.4g} synaptic ops, "
              f"{activity['updates_per_step']:.4g} neuron updates, {activity['spikes_per_step']:.4g} spikes per step "
              f"(our counters)")
    return {
        "static_power_chip": {**_spread([r["static_W"] for r in runs]), "unit": "W", "kind": "measured",
                              "source": f"static power of the PilotNet LIF benchmark, one chip ({where}); value: "
                                        f"median run, range: min..max"},
        "t_synop": {**_spread(t_synop), "unit": "ns", "kind": "calibrated",
                    "source": f"fitted to the measured step time ({', '.join(str(r['us_per_step']) for r in runs)} "
                              f"µs; {where}) on our mapping ({mapping['cores']} cores; Intel's: {measured['cores']}): "
                              f"slowest group {slowest}, {per_core:.4g} synaptic ops per core per step; neuron "
                              f"updates at t_neuron and t_step_overhead (assumptions); scripts/calibrate_loihi2.py"},
        "e_synop": {**_spread(e_synop), "unit": "pJ", "kind": "calibrated",
                    "source": f"measured dynamic energy per step (dynamic W x step time; {where}) less neuron updates "
                              f"at e_neuron_active and spikes at e_spike_tile + hops (assumptions), over the "
                              f"synaptic ops per step. {counts}; scripts/calibrate_loihi2.py"},
    }


def _solve_t_synop(graph, rows, cores: dict, profile: Profile, measured_step: float) -> float:
    """The t_synop (s) at which the step-time model gives ``measured_step`` (it grows with t_synop: bisection)."""
    lo, hi = 0.0, 1e-6
    if step_time(graph, rows, cores, _with(profile, t_synop=lo))[0] > measured_step:
        raise ValueError("neuron updates and overhead alone exceed the measured step time")
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if step_time(graph, rows, cores, _with(profile, t_synop=mid))[0] < measured_step \
            else (lo, mid)
    return (lo + hi) / 2


def _with(profile: Profile, **si_values: float) -> Profile:
    """``profile`` with some constants replaced (values in SI units)."""
    from .analysis.profiles import UNITS, Constant

    constants = dict(profile.constants)
    for key, value in si_values.items():
        c = constants[key]
        constants[key] = Constant(value / UNITS[c.unit], c.unit, c.kind, c.source)
    return Profile(profile.name, profile.title, profile.model, profile.notes, constants, profile.path)
