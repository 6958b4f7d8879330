"""The Loihi 2 profile is fitted on every public measured run (calibration/loihi2_measured): the profile equals the
fit, the fitted model reproduces the runs it was fitted on, cross-validation stays within the issue's goal where
the data allow it, the multi-chip model reproduces YOLO-KP's chips, remote traffic and step, and --predict works on
the pack's own records."""
import json
import subprocess
import sys

import pytest

from support import REPO

from spikformer_deploy.analysis import estimate, load_profile
from spikformer_deploy.analysis.feasibility import map_network, performance
from spikformer_deploy.calibration import (MEASURED_PACK, cross_validate, fit, measured_runs, predict,
                                           profile_entries, yolo_check)

RUNS = json.loads((MEASURED_PACK / "runs.json").read_text())["runs"]
SCRIPT = REPO / "scripts" / "calibrate_loihi2.py"


@pytest.fixture(scope="module")
def fitted():
    profile = load_profile("loihi2")
    runs, ours = measured_runs(profile)
    return profile, runs, ours


def test_profile_equals_the_fit(fitted):
    """scripts/calibrate_loihi2.py regenerates these; a hand edit or a changed counter shows up here."""
    profile, runs, ours = fitted
    entries, fitted_on = profile_entries(runs, profile, ours)
    for key, entry in entries.items():
        assert profile.constants[key].to_dict() == entry, key
    assert list(profile.fitted_on) == fitted_on == [r["run_id"] for r in RUNS]


def test_fit_covers_every_workload_and_the_multi_chip_run(fitted):
    profile, runs, _ = fitted
    assert len(profile.fitted_on) >= 8 and {r.workload for r in runs} == {"pilotnet_lif", "pilotnet_sdnn",
                                                                          "yolo_kp_sdnn"}
    yolo = next(r for r in runs if r.chips > 1)
    assert yolo.chips == 9 and {"time", "energy"} <= yolo.uses
    for key in ("e_synop", "e_neuron_active", "t_synop", "t_interchip_bit", "neuron_passes", "static_power_chip"):
        c = profile.constants[key]
        assert c.kind in ("calibrated", "measured") and c.low <= c.value <= c.high and c.low < c.high, key
    # Intel's published latency-model constants are taken as published
    assert profile.constants["t_neuron"].kind == profile.constants["t_barrier"].kind == "published"
    assert profile["t_neuron"] == pytest.approx(4e-9) and profile["t_barrier"] == pytest.approx(10e-6)


def test_our_pilotnet_counts_against_the_hardware_counters(fitted):
    """Our count (every connection of every input event, ~3.04e6 per step, as the pack's README counts it from the
    ground-truth spikes) is above the hardware counter's 2.29e6 (non-zero weights, its own definition); a neuron
    update is 2.37 of the hardware's dendrite updates (microcode passes)."""
    _, runs, ours = fitted
    assert ours["activity"].synops == pytest.approx(3.04e6, rel=0.02)
    assert 1.2 < ours["activity"].synops / RUNS[0]["activity"]["syn_ops_per_step"] < 1.45
    assert ours["updates_per_step"] == 158_509  # every neuron, every step
    assert runs[0].passes_per_update == pytest.approx(374_970 / 158_509)


def test_fitted_model_reproduces_the_runs_it_was_fitted_on(fitted):
    profile, runs, _ = fitted
    by_id = {r.run_id: r for r in runs}
    for run in runs:
        p = predict(run, profile)
        if "time" in run.uses:
            assert p["step_time_us"]["low"] <= run.us_per_step <= p["step_time_us"]["high"], run.run_id
        if "energy" in run.uses:
            assert p["dynamic_uJ_per_step"]["low"] <= run.dynamic_uJ_per_step <= p["dynamic_uJ_per_step"]["high"]
        assert p["static_W_per_chip"]["low"] <= run.static_W_per_chip <= p["static_W_per_chip"]["high"]
    yolo = predict(by_id["yolo_kp_sdnn_vpx_20240220"], profile)
    assert yolo["step_time_us"]["value"] == pytest.approx(8960.818, rel=2e-3)
    assert yolo["dynamic_uJ_per_step"]["value"] == pytest.approx(4605.241, rel=2e-3)
    assert yolo["bound_by"] == "interchip"
    median_lif = sorted(r.us_per_step for r in runs if r.workload == "pilotnet_lif")
    lif = predict(by_id["pilotnet_lif_1878d6d4"], profile)
    assert median_lif[2] <= lif["step_time_us"]["value"] <= median_lif[3] * 1.001
    assert lif["bound_by"] == "neurocores"


def test_cross_validation_meets_the_error_goal(fitted):
    """Median |error| <= 25 % for every quantity and both folds. Where a run falls outside its predicted range the
    model lacks a term the others cannot supply (README: the cross-validation table)."""
    profile, runs, _ = fitted
    rows = cross_validate(runs, profile)
    assert {r["fold"] for r in rows} == {"leave one run out", "leave one workload out"}
    for quantity in ("step_time_us", "dynamic_uJ_per_step", "static_W_per_chip"):
        for fold in ("leave one run out", "leave one workload out"):
            errors = sorted(abs(r["error"]) for r in rows if r["quantity"] == quantity and r["fold"] == fold)
            assert errors and errors[len(errors) // 2] <= 0.25, (quantity, fold)
    # without the multi-chip run nothing measures the inter-chip link: Intel's link figure is 2.4x too fast
    yolo = next(r for r in rows if r["run_id"].startswith("yolo") and r["quantity"] == "step_time_us"
                and r["fold"] == "leave one run out")
    assert not yolo["inside"] and yolo["error"] < -0.4


def test_fit_without_the_multi_chip_run_falls_back_to_intels_link(fitted):
    profile, runs, _ = fitted
    constants = fit([r for r in runs if r.chips == 1], profile)
    assert constants["t_interchip_bit"] == pytest.approx((1.25e-9 / 8,) * 3)
    single_workload = fit([r for r in runs if r.workload == "pilotnet_lif"], profile)
    assert single_workload["e_neuron_active"] == (0.0, 0.0, 0.0)  # one workload: all-in per synaptic op


def test_yolo_kp_through_our_placement_and_traffic_rule():
    """The printed per-layer core table placed by our rule lands on the measured 9 chips; the busiest chip's
    remote spikes are within 10 % of Intel's routing estimate and the step inside the measured steady state."""
    check = yolo_check(load_profile("loihi2"))
    assert check["chips"] == check["chips_measured"] == 9
    assert check["busiest_chip_remote_spikes"] == pytest.approx(check["intel_busiest_chip_remote_spikes"], rel=0.1)
    assert check["inside"]


def test_predict_on_the_packs_records():
    out = subprocess.run([sys.executable, str(SCRIPT), "--predict", str(MEASURED_PACK / "runs.json"), "--json"],
                         capture_output=True, text=True, check=True)
    predictions = json.loads(out.stdout)
    assert [p["run_id"] for p in predictions] == [r["run_id"] for r in RUNS]
    for p in predictions:
        for key in ("step_time_us", "dynamic_uJ_per_step", "static_W_per_chip"):
            assert p[key]["low"] <= p[key]["value"] <= p[key]["high"], (p["run_id"], key)
    yolo = predictions[-1]
    assert yolo["step_time_us"]["value"] == pytest.approx(8960.818, rel=2e-3)


def test_predict_names_a_missing_counter(tmp_path):
    record = {"run_id": "mine", "chips": {"chips_used_by_network": 2}, "cores": {"total": 200},
              "activity": {"syn_ops_per_step": 1e6}}
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([record]))
    out = subprocess.run([sys.executable, str(SCRIPT), "--predict", str(path)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == ("error: run mine: missing field 'activity.neuron_updates_per_step' (the pack's "
                                  "schema: calibration/loihi2_measured)")


def test_pilotnet_through_the_tool_matches_the_fit(fitted):
    """The energy model and the report, on PilotNet's graph and our mapping, give the profile's step time and the
    fitted dynamic energy per step (the graph path and the record path are one model)."""
    profile, runs, ours = fitted
    graph, rows = ours["graph"], ours["rows"]
    mapping = map_network(graph, profile)
    (e,) = estimate(rows, graph, profile, mapping)
    run = next(r for r in runs if r.run_id == "pilotnet_lif_1878d6d4")
    p = predict(run, profile)
    assert e.extra["step_time_s"] * 1e6 == pytest.approx(p["step_time_us"]["value"], rel=0.01)
    assert performance(graph, profile, mapping, rows)["step_latency_s"] == e.extra["step_time_s"]
    assert e.extra["dynamic_J"] / graph.steps * 1e6 == pytest.approx(p["dynamic_uJ_per_step"]["value"], rel=0.01)
