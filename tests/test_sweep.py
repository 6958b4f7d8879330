"""sweep: one integer run per (weight bits, T), the same numbers whatever the number of workers, a Pareto front that
nothing dominates, and one-line errors for bad settings."""
import json

import numpy as np
import pytest

from support import run_cli

from spikformer_deploy.sweep import pareto


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    from spikformer_deploy.cli import main

    runs = {}
    for workers in (1, 2):
        out = tmp_path_factory.mktemp(f"sweep{workers}")
        assert main(["sweep", "--weight-bits", "4,8", "--T", "2,4", "--samples", "48", "--calibration", "64",
                     "--workers", str(workers), "-o", str(out)]) == 0
        runs[workers] = out
    return runs


def test_points_files_and_determinism(swept):
    one, two = (json.loads((swept[w] / "sweep.json").read_text()) for w in (1, 2))
    assert one == two, "results must not depend on the number of worker processes"
    points = one["points"]
    assert [(p["weight_bits"], p["T"]) for p in points] == [(4, 2), (8, 2), (4, 4), (8, 4)]
    for p in points:
        assert p["samples"] == 48 and 0 <= p["int_accuracy"] <= 1 and 0 <= p["agreement"] <= 1
        low, high = p["loihi2_range_J"]
        assert low < p["loihi2_J"] < high and p["cmos45nm_corrected_J"] > 0 and p["latency_s"] > 0
    # more time steps: more synaptic ops and more energy at the same width
    assert points[2]["sops"] > points[0]["sops"] and points[2]["loihi2_J"] > points[0]["loihi2_J"]
    assert (swept[1] / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (swept[1] / "sweep.md").read_text()
    assert table.count("\n| ") == 2 + len(points)  # header, separator, one row per point


def test_pareto_front_by_brute_force():
    rng = np.random.default_rng(0)
    points = [{"int_accuracy": float(a), "loihi2_J": float(e)} for a, e in rng.random((40, 2))]
    front = set(pareto(points))
    for i, p in enumerate(points):
        beaten = any(q["int_accuracy"] >= p["int_accuracy"] and q["loihi2_J"] <= p["loihi2_J"] and q != p
                     for q in points)
        assert (i in front) == (not beaten)


@pytest.mark.parametrize("args,needle", [
    (("--weight-bits", "4,9"), "--weight-bits: 9 is not in 2..8"),
    (("--weight-bits", "four"), "expected comma-separated integers"),
    (("--T", "0,2"), "--T: 0 is not in 1..64"),
    (("--T", "3,x"), "--T: expected comma-separated integers"),
    (("--data", "BAD"), "needs images [N, 1, H, W]"),
])
def test_bad_settings_are_one_line(tmp_path, capsys, args, needle):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 3, 8, 8), np.float32))
    args = [str(bad) if a == "BAD" else a for a in args]
    rc, _, err = run_cli(capsys, "sweep", "-o", str(tmp_path / "out"), *args)
    assert rc == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "out").exists()
