"""The Loihi 2 profile is calibrated on Intel's measured PilotNet LIF benchmark: the profile equals what the
calibration computes from the pack, and the model then reproduces the measurements it was fitted to."""
import pytest
import yaml

from support import REPO

from spikformer_deploy.analysis import estimate, load_profile
from spikformer_deploy.analysis.feasibility import core_counts, map_network, performance
from spikformer_deploy.calibration import calibrate_loihi2, pilotnet_activity

MEASURED = yaml.safe_load((REPO / "calibration" / "loihi2_pilotnet_lif" / "measured.yaml").read_text())


@pytest.fixture(scope="module")
def activity():
    return pilotnet_activity()


def test_profile_equals_the_calibration():
    """scripts/calibrate_loihi2.py regenerates these; a hand edit or a changed counter shows up here."""
    profile = load_profile("loihi2")
    for key, entry in calibrate_loihi2(profile).items():
        c = profile.constants[key]
        assert (c.value, c.low, c.high, c.unit, c.kind, c.source) == (
            entry["value"], entry["low"], entry["high"], entry["unit"], entry["kind"], entry["source"]), key


def test_synaptic_ops_agree_with_the_independent_count(activity):
    """The pack's README counts ~3.04e6 synaptic ops per step over every connection of the ground-truth spikes;
    the hardware counter (~2.28e6) counts fewer (non-zero weights, its own definition)."""
    ours = activity["synops_per_step"]
    assert ours == pytest.approx(3.04e6, rel=0.02)
    assert 1.2 < ours / MEASURED["counters"]["synaptic_ops_per_step"] < 1.45
    assert activity["updates_per_step"] == 158_509  # every neuron, every step


def test_calibrated_model_reproduces_the_measurements(activity):
    graph, rows = activity["graph"], activity["rows"]
    profile = load_profile("loihi2")
    mapping = map_network(graph, profile)
    (e,) = estimate(rows, graph, profile, core_counts(mapping))
    steps = [r["us_per_step"] * 1e-6 for r in MEASURED["runs"]]
    assert e.extra["step_time_s"] == pytest.approx(sorted(steps)[1], rel=1e-3)  # the median run
    assert performance(graph, profile, mapping, rows)["step_latency_s"] == e.extra["step_time_s"]
    measured = [r["mJ_total"] * 1e-3 for r in MEASURED["runs"]]
    low, high = e.range
    assert low == pytest.approx(min(measured), rel=0.03) and high == pytest.approx(max(measured), rel=0.03)
    assert low <= e.total <= high
    dynamic = e.total - e.per_layer["static"]
    assert dynamic == pytest.approx(sorted(r["mJ_dynamic"] for r in MEASURED["runs"])[1] * 1e-3, rel=0.03)
