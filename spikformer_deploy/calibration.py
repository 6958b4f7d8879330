"""Fitting the Loihi 2 profile on every public measured run (``calibration/loihi2_measured``), cross-validating the
fit, and predicting new runs from their counters. The model fitted is ``analysis.loihi_model``, the one the tool
applies to deploy graphs.

What each run contributes (``RUN_USES``):
- PilotNet LIF (6 runs, 1 chip, two boards): step time, dynamic energy and static power. Its activity is our own
  count: the pack's network run by the simulator on the pack's frame for T = 16 and mapped by our mapper, with a
  neuron update taken as ``neuron_passes`` microcode passes, the hardware's dendrite-update counter over our
  updates on the same run;
- PilotNet SDNN (6 runs): static power only. They are host-I/O bound (59-89 ms per step; dynamic power within noise);
- YOLO-KP SDNN (1 run, 9 chips): step time, dynamic energy and static power, on the hardware's counters: synaptic ops
  (exact), neuron updates and spikes (plot-read, approximate), the busiest core (derived from Intel's core-time
  estimate), the busiest chip's remote graded spikes (derived from Intel's routing estimate).

The fit (``fit``), constant by constant:
- ``static_power_chip`` (measured): per-chip static power of the runs; value the median, range min..max;
- ``t_synop`` (calibrated): the step time of the single-chip runs solved for it (the cost model grows with it),
  ``t_neuron`` and ``t_barrier`` as Intel publishes them; value the median, range min..max. Without a single-chip
  run: Intel's 0.66 ns (published);
- ``t_interchip_bit`` (calibrated): the step time of the multi-chip runs solved for it at the fitted ``t_synop``; the
  range pairs the low end of the measured step with the high end of ``t_synop`` and the reverse. Without a
  multi-chip run: Intel's link, 8 b at 800 MHz (published);
- ``e_synop``, ``e_neuron_active`` (calibrated): the dynamic energy per step less the spike routing, embedded-core and
  inter-chip terms (estimates and assumptions), fitted on each workload's median run by non-negative least squares in
  relative error. Two workloads determine both; one determines only an all-in ``e_synop`` (``e_neuron_active`` 0).
  No per-step or per-active-core term: two workloads cannot separate a third. Range: both constants scaled by the
  lowest and highest measured / fitted ratio over the runs (run-to-run and board-to-board spread);
- ``neuron_passes`` (calibrated): the hardware's dendrite updates per step over our neuron updates (PilotNet LIF);
  range: the plot-read uncertainty (±5 %).
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, replace

import numpy as np
import torch

from .analysis import layer_rows
from .analysis.feasibility import map_network
from .analysis.loihi_model import StepActivity, dynamic_energy, graph_activity, step_time
from .analysis.profiles import UNITS, Constant, Profile
from .backends.sim import Simulator
from .bundled import resource
from .errors import DataError
from .frontends import read_netx

CALIBRATION_DIR = resource("calibration")
LIF_PACK = CALIBRATION_DIR / "loihi2_pilotnet_lif"
MEASURED_PACK = CALIBRATION_DIR / "loihi2_measured"
PLOT_READ = 0.05  # the pack's README: syn ops and neuron updates read off plots are good to about ±5 %
WORKLOADS = {"pilotnet_lif": "PilotNet LIF", "pilotnet_sdnn": "PilotNet SDNN", "yolo_kp_sdnn": "YOLO-KP SDNN"}
RUN_USES = {"pilotnet_lif": {"time", "energy", "static"}, "pilotnet_sdnn": {"static"},
            "yolo_kp_sdnn": {"time", "energy", "static"}}
# YOLO-KP's printed step is the mean over 100 steps; its time-per-step plot (cell 49) shows ~21 ms at step 0 and
# 8-10 ms after: the steady-state spread, plot-read
STEP_SPREAD_US = {"yolo_kp_sdnn_vpx_20240220": (8000.0, 10000.0)}


def intel_constants() -> dict[str, float]:
    """Intel's latency-model constants as the pack quotes them (intel_latency_model.json, units as written there:
    µs per op, µs per step, graded spikes per s)."""
    data = json.loads((MEASURED_PACK / "intel_latency_model.json").read_text())
    return {c["name"]: c["value"] for c in data["constants"] if isinstance(c["value"], (int, float))}


INTEL = intel_constants()
# what the fit falls back to where no run fixes a constant (SI): Intel's per-op time, and its link of 8 b at 800 MHz
# (a graded spike is 96 bits: 66.7 M graded spikes/s)
PRIORS = {"t_synop": INTEL["time_per_syn_op"] * 1e-6, "t_interchip_bit": 1 / (INTEL["bridge_router_bandwidth"] * 96)}


@dataclass(frozen=True)
class Run:
    """One measured (or to-be-predicted) run in the cost model's terms."""

    run_id: str
    workload: str
    activity: StepActivity
    us_per_step: float | None = None
    step_spread_us: tuple[float, float] | None = None
    dynamic_uJ_per_step: float | None = None
    static_W_per_chip: float | None = None
    uses: frozenset = frozenset()
    passes_per_update: float | None = None  # runs counted by us: the hardware's dendrite updates per our update

    @property
    def chips(self) -> int:
        return self.activity.chips


def workload_of(run_id: str) -> str:
    return next((w for w in WORKLOADS if run_id.startswith(w)), run_id)


def _field(record: dict, path: str, run_id: str, required: bool = True):
    value = record
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None and required:
        raise DataError(f"run {run_id}: missing field {path!r} (the pack's schema: calibration/loihi2_measured)")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or value < 0):
        raise DataError(f"run {run_id}: field {path!r} must be a non-negative number, got {value!r}")
    return value


def counter_activity(record: dict, profile: Profile) -> StepActivity:
    """A run's step activity from its hardware counters (the pack's ``activity`` fields): synaptic ops and neuron
    updates per step are required; the busiest core defaults to an even spread over the cores; spikes leaving the
    busiest chip, if not given, come from Intel's routing estimate where the record has one (one graded spike per
    remote spike), else none."""
    run_id = str(record.get("run_id", "?"))
    chips = int(_field(record, "chips.chips_used_by_network", run_id))
    cores = int(_field(record, "cores.total", run_id))
    if chips < 1 or cores < 1:
        raise DataError(f"run {run_id}: needs at least one chip and one core")
    synops = _field(record, "activity.syn_ops_per_step", run_id)
    passes = _field(record, "activity.neuron_updates_per_step", run_id)
    core_synops = _field(record, "activity.busiest_core_syn_ops_per_step", run_id, False) or synops / cores
    per_core = record.get("activity", {}).get("neuron_updates_per_core_per_step")
    core_passes = (max(v for v in per_core.values() if isinstance(v, (int, float))) if isinstance(per_core, dict)
                   else passes / cores)
    remote = _field(record, "activity.remote_spikes_busiest_chip_per_step", run_id, False)
    routing_us = _field(record, "latency_model_outputs.est_remote_spike_routing_time_per_step_us", run_id, False)
    if remote is None and routing_us is not None:
        remote = routing_us * 1e-6 * INTEL["bridge_router_bandwidth"]
    payload = record.get("activity", {}).get("remote_spike_payload", "graded" if "sdnn" in run_id else "binary")
    bits = (remote or 0.0) * profile[f"spike_bits_{payload}"]
    # the busiest chip's traffic on each of the chips - 1 boundaries: an upper estimate of the total
    return StepActivity(synops=synops, neuron_passes=passes,
                        spikes=_field(record, "activity.output_spikes_per_step", run_id, False) or 0.0,
                        core_load=((core_synops, core_passes),), chips=chips,
                        chip_out_bits=(bits,) * (chips - 1) if chips > 1 and bits else ())


def pilotnet_activity(profile: Profile) -> dict:
    """PilotNet LIF on the pack's frame at the benchmark's T = 16: graph, per-layer rows, mapping and step activity
    at one microcode pass per neuron update (``measured_runs`` scales it by each run's passes)."""
    graph = read_netx(LIF_PACK / "network.net", steps=16)
    frame = torch.tensor(np.load(LIF_PACK / "image.npy").transpose(2, 1, 0)[None], dtype=torch.float32)
    rows = layer_rows(graph, Simulator(graph).run(frame).counters)
    mapping = map_network(graph, profile)
    act, _ = graph_activity(graph, rows, mapping, with_constants(profile, neuron_passes=1.0))
    return {"graph": graph, "rows": rows, "mapping": mapping, "activity": act,
            "updates_per_step": sum(r.neuron_updates for r in rows) / graph.steps}


def measured_runs(profile: Profile) -> tuple[list[Run], dict]:
    """Every run of the pack, and the PilotNet LIF counts (ours) that replace its plot-read counters."""
    records = json.loads((MEASURED_PACK / "runs.json").read_text())["runs"]
    ours = pilotnet_activity(profile)
    runs = []
    for rec in records:
        workload = workload_of(rec["run_id"])
        if workload == "pilotnet_lif":  # our own count, the hardware's passes per update
            passes = rec["activity"]["neuron_updates_per_step"] / ours["updates_per_step"]
            act = replace(ours["activity"], neuron_passes=ours["activity"].neuron_passes * passes,
                          core_load=tuple((s, p * passes) for s, p in ours["activity"].core_load))
        else:
            act, passes = counter_activity(rec, profile), None
        runs.append(measured_run(rec, act, RUN_USES.get(workload, {"time", "energy", "static"}), passes))
    return runs, ours


def measured_run(rec: dict, act: StepActivity, uses, passes: float | None = None) -> Run:
    us = rec.get("timing", {}).get("us_per_step")
    static = rec.get("power", {}).get("static_W")
    return Run(rec["run_id"], workload_of(rec["run_id"]), act, us,
               STEP_SPREAD_US.get(rec["run_id"], (us, us)) if us else None,
               rec.get("energy", {}).get("dynamic_uJ_per_step"),
               None if static is None else static / act.chips, frozenset(uses), passes)


def with_constants(profile: Profile, **values: float) -> Profile:
    """``profile`` with some constants' values replaced (in SI units), their ranges dropped."""
    constants = dict(profile.constants)
    for key, value in values.items():
        c = constants[key]
        constants[key] = Constant(value / UNITS[c.unit], c.unit, c.kind, c.source)
    return replace(profile, constants=constants)


def _solve(f, target: float, hi: float) -> float:
    """x in [0, hi] with f(x) = target, f non-decreasing (bisection); 0 where f(0) already exceeds it."""
    lo = 0.0
    if f(lo) >= target:
        return 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def _spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fit(runs: list[Run], profile: Profile) -> dict[str, tuple[float, float, float]]:
    """{constant: (value, low, high)} in SI units, from ``runs`` (see the module's docstring)."""
    out = {}
    static = [r.static_W_per_chip for r in runs if "static" in r.uses and r.static_W_per_chip is not None]
    out["static_power_chip"] = _spread(static) if static else (profile["static_power_chip"],) * 3
    ratios = [r.passes_per_update for r in runs if r.passes_per_update]
    out["neuron_passes"] = ((statistics.median(ratios), min(ratios) * (1 - PLOT_READ), max(ratios) * (1 + PLOT_READ))
                            if ratios else (profile["neuron_passes"],) * 3)
    timed = [r for r in runs if "time" in r.uses and r.us_per_step]

    def step_at(r: Run, **values) -> float:
        return step_time(r.activity, with_constants(profile, **values))[0]

    single = [_solve(lambda x, r=r: step_at(r, t_synop=x, t_interchip_bit=0.0), r.us_per_step * 1e-6, 1e-6)
              for r in timed if r.chips == 1]
    out["t_synop"] = _spread(single) if single else (PRIORS["t_synop"],) * 3
    t_syn, syn_low, syn_high = out["t_synop"]
    multi = [r for r in timed if r.chips > 1 and r.activity.chip_out_bits]
    if multi:
        solve = lambda r, syn, us: _solve(lambda x: step_at(r, t_synop=syn, t_interchip_bit=x), us * 1e-6, 1e-6)  # noqa: E731
        out["t_interchip_bit"] = (statistics.median(solve(r, t_syn, r.us_per_step) for r in multi),
                                  min(solve(r, syn_high, r.step_spread_us[0]) for r in multi),
                                  max(solve(r, syn_low, r.step_spread_us[1]) for r in multi))
    else:
        out["t_interchip_bit"] = (PRIORS["t_interchip_bit"],) * 3
    out["e_synop"], out["e_neuron_active"] = _fit_energy([r for r in runs if "energy" in r.uses
                                                          and r.dynamic_uJ_per_step], profile)
    return out


def _fit_energy(runs: list[Run], profile: Profile) -> tuple[tuple, tuple]:
    def residual(r: Run) -> float:
        """The measured dynamic energy per step less the terms the fit takes as given."""
        terms = dynamic_energy(r.activity, profile)
        return r.dynamic_uJ_per_step * 1e-6 - terms["spikes"] - terms["embedded"] - terms["interchip"]

    if not runs:
        return (profile["e_synop"],) * 3, (profile["e_neuron_active"],) * 3
    by_workload: dict[str, list[Run]] = {}
    for r in runs:
        by_workload.setdefault(r.workload, []).append(r)
    rows = []  # one per workload: its median run's counts and residual energy
    for group in by_workload.values():
        target = statistics.median(residual(r) for r in group)
        rows.append((group[0].activity.synops, group[0].activity.neuron_passes, target))
    a = np.array([[s / t, p / t] for s, p, t in rows])
    if len(rows) >= 2:
        coef = np.linalg.lstsq(a, np.ones(len(rows)), rcond=None)[0]
        if coef.min() < 0:  # non-negative: drop the negative term and refit the other
            keep = int(np.argmax(coef))
            coef = np.zeros(2)
            coef[keep] = np.linalg.lstsq(a[:, [keep]], np.ones(len(rows)), rcond=None)[0][0]
    else:
        coef = np.array([1.0 / a[0, 0], 0.0])  # one workload: all-in per synaptic op
    ratios = [residual(r) / (coef[0] * r.activity.synops + coef[1] * r.activity.neuron_passes) for r in runs]
    low, high = min(min(ratios), 1.0), max(max(ratios), 1.0)
    return tuple((float(c), float(c * low), float(c * high)) for c in coef)


def fitted_profile(runs: list[Run], profile: Profile) -> Profile:
    """``profile`` with the constants ``fit`` gives (ranges included)."""
    constants = dict(profile.constants)
    for key, (value, low, high) in fit(runs, profile).items():
        c = constants[key]
        scale = UNITS[c.unit]
        constants[key] = Constant(value / scale, c.unit, c.kind, c.source, low / scale, high / scale)
    return replace(profile, constants=constants)


def _bounded(f, profile: Profile) -> dict:
    return {"value": f(profile), "low": f(profile.at("low")), "high": f(profile.at("high"))}


def predict(run: Run, profile: Profile) -> dict:
    """Step time (µs), dynamic energy per step (µJ) and static power per chip (W), each with its range (every
    constant at its low, then its high end)."""
    return {"run_id": run.run_id,
            "step_time_us": _bounded(lambda p: step_time(run.activity, p)[0] * 1e6, profile),
            "dynamic_uJ_per_step": _bounded(lambda p: sum(dynamic_energy(run.activity, p).values()) * 1e6, profile),
            "static_W_per_chip": _bounded(lambda p: p["static_power_chip"], profile),
            "bound_by": step_time(run.activity, profile)[2]}


MEASURED_OF = {"step_time_us": "us_per_step", "dynamic_uJ_per_step": "dynamic_uJ_per_step",
               "static_W_per_chip": "static_W_per_chip"}
USE_OF = {"step_time_us": "time", "dynamic_uJ_per_step": "energy", "static_W_per_chip": "static"}


def cross_validate(runs: list[Run], profile: Profile) -> list[dict]:
    """Each run predicted from a fit over the others (leave one run out) and over the other workloads (leave one
    workload out): one row per run, fold and quantity the run measures."""
    rows = []
    folds = [("leave one run out", [r]) for r in runs if r.uses]
    folds += [("leave one workload out", [r for r in runs if r.workload == w]) for w in WORKLOADS
              if any(r.workload == w for r in runs)]
    for fold, left_out in folds:
        fitted = fitted_profile([r for r in runs if r not in left_out], profile)
        for r in left_out:
            predicted = predict(r, fitted)
            for quantity, attr in MEASURED_OF.items():
                measured = getattr(r, attr)
                if USE_OF[quantity] not in r.uses or measured is None:
                    continue
                p = predicted[quantity]
                rows.append({"fold": fold, "run_id": r.run_id, "quantity": quantity, "measured": measured,
                             "predicted": float(p["value"]), "low": float(p["low"]), "high": float(p["high"]),
                             "error": float(p["value"] / measured - 1),
                             "inside": bool(p["low"] <= measured <= p["high"])})
    return rows


def _sig(x: float, rounding=round) -> float:
    """4 significant digits (the measurements carry about that many), rounded by ``rounding`` (range ends outward:
    math.floor, math.ceil)."""
    if x == 0:
        return 0.0
    scale = 10.0 ** (3 - math.floor(math.log10(abs(x))))
    return float(f"{rounding(x * scale) / scale:.4g}")


def profile_entries(runs: list[Run], profile: Profile, ours: dict) -> tuple[dict[str, dict], list[str]]:
    """The fitted constants as profile YAML entries (value, low, high, unit, kind, source), and the run ids the fit
    used."""
    constants = fit(runs, profile)
    used = [r.run_id for r in runs if r.uses]

    def ids(use: str, chips=None) -> str:
        chosen = [r.run_id for r in runs if use in r.uses and (chips is None or chips(r.chips))]
        return ", ".join(chosen)

    pack = "calibration/loihi2_measured (Intel, BSD-3-Clause)"
    lif = ours["activity"]
    sources = {
        "static_power_chip": ("measured", f"static power per chip of {len([r for r in runs if 'static' in r.uses])} "
                              f"runs on 1-chip Oheo Gulch, 8-chip Kapoho Point and 16-chip VPX boards ({pack}: "
                              f"{ids('static')}); value: the median run, range: min..max"),
        "neuron_passes": ("calibrated", f"microcode passes per neuron update: the hardware's dendrite updates per "
                          f"step (plot-read) over ours, {ours['updates_per_step']:.6g} per step on PilotNet LIF "
                          f"({ids('time', lambda c: c == 1)}); range: the plot-read uncertainty ±5 %"),
        "t_synop": ("calibrated", f"the single-chip runs' step time solved for it ({ids('time', lambda c: c == 1)}; "
                    f"{pack}) on our mapping and counts of PilotNet LIF ({ours['mapping']['cores']} cores, Intel's "
                    f"74; busiest core {max(s for s, _ in lif.core_load):.4g} synaptic ops per step), with t_neuron "
                    f"and t_barrier as Intel publishes them; value: the median run, range: min..max (Oheo Gulch vs "
                    f"Kapoho Point). Intel's own figure: 0.66 ns"),
        "t_interchip_bit": ("calibrated", f"the multi-chip run's step time solved for it ({ids('time', lambda c: c > 1)}; "
                            f"{pack}): the busiest chip's remote graded spikes per step from Intel's routing "
                            f"estimate, at the fitted t_synop; range: the steady-state step spread (8-10 ms, "
                            f"plot-read) against t_synop's. Intel's link figure (8 b x 800 MHz): 0.156 ns; "
                            f"measured: {constants['t_interchip_bit'][0] / 0.15625e-9:.2g}x slower"),
        "e_synop": ("calibrated", f"dynamic energy per step (dynamic W x step time) of {ids('energy')} ({pack}) "
                    f"less the spike routing, embedded and inter-chip terms, fitted with e_neuron_active per "
                    f"workload (non-negative least squares, relative error): PilotNet LIF on our counts "
                    f"({lif.synops:.4g} synaptic ops, {lif.neuron_passes:.4g} neuron passes per step at "
                    f"neuron_passes), YOLO-KP on the hardware's; range: measured / fitted over the runs"),
        "e_neuron_active": ("calibrated", "per neuron microcode pass, fitted with e_synop (see there); range: "
                            "measured / fitted over the runs"),
    }
    entries = {}
    for key, (value, low, high) in constants.items():
        unit = profile.constants[key].unit
        kind, source = sources[key]
        entries[key] = {"value": _sig(value / UNITS[unit]), "low": _sig(low / UNITS[unit], math.floor),
                        "high": _sig(high / UNITS[unit], math.ceil), "unit": unit, "kind": kind,
                        "source": source + "; scripts/calibrate_loihi2.py"}
    return entries, used


def intel_estimate_us(record: dict) -> float | None:
    """Intel's own latency model on a record's hardware counters: max over the busiest core's terms and the
    routing estimate (intel_latency_model.json), for the comparison column."""
    act = record.get("activity", {})
    if act.get("busiest_core_syn_ops_per_step") is None:
        return None
    per_core = act.get("neuron_updates_per_core_per_step")
    passes = (max(v for v in per_core.values() if isinstance(v, (int, float))) if isinstance(per_core, dict)
              else None)
    terms = [act["busiest_core_syn_ops_per_step"] * INTEL["time_per_syn_op"], INTEL["time_per_barrier_sync"]]
    if passes:
        terms.append(passes * INTEL["time_per_neuron_op"])
    routing = record.get("latency_model_outputs", {}).get("est_remote_spike_routing_time_per_step_us")
    return max(terms + ([routing] if routing else []))


YOLO_RUN = "yolo_kp_sdnn_vpx_20240220"


def yolo_check(profile: Profile) -> dict:
    """YOLO-KP through our placement and traffic rule: its printed per-layer core table (input buffer first) placed
    on chips of ``cores_per_chip``, each layer feeding the next, every core emitting the run's mean output spikes
    per core (plot-read; per-layer spikes are not printed), graded payload. Against the run: the chips, the busiest
    chip's remote spikes (Intel's routing estimate) and the step time."""
    from .analysis.loihi_model import place_groups, split_flow

    record = next(r for r in json.loads((MEASURED_PACK / "runs.json").read_text())["runs"] if r["run_id"] == YOLO_RUN)
    table = list(reversed(record["cores"]["per_layer_as_printed"]))
    layers = [(f"{i}: {row['label'] or 'layer'}", int(row["Cores"])) for i, row in enumerate(table)]
    placed = place_groups(layers, int(profile["cores_per_chip"]))
    per_core = record["activity"]["output_spikes_per_step"] / record["cores"]["total"]
    flows = [f for (src, n), (dst, _) in zip(layers, layers[1:])
             for f in split_flow(placed, src, dst, per_core * n, "graded")]
    chips = 1 + max(c for shares in placed.values() for c in shares)
    out_spikes = [sum(f["spikes_per_step"] for f in flows if f["from_chip"] == c) for c in range(chips)]
    base = counter_activity(record, profile)
    ours = replace(base, chip_out_bits=tuple(s * profile["spike_bits_graded"] for s in out_spikes))
    intel_remote = base.chip_out_bits[0] / profile["spike_bits_graded"]
    step = {b: step_time(ours, profile.at(b) if b != "value" else profile)[0] * 1e6 for b in ("value", "low", "high")}
    return {"chips": chips, "chips_measured": record["chips"]["chips_used_by_network"],
            "busiest_chip_remote_spikes": max(out_spikes), "intel_busiest_chip_remote_spikes": intel_remote,
            "step_time_us": step, "measured_us": record["timing"]["us_per_step"],
            "measured_spread_us": list(STEP_SPREAD_US[YOLO_RUN]),
            "inside": STEP_SPREAD_US[YOLO_RUN][0] <= step["value"] <= STEP_SPREAD_US[YOLO_RUN][1]}
