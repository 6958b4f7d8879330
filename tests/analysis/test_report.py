"""Feasibility report: the bundled model and paper-size random models, totals against closed-form counts."""
import json

import pytest
import torch

from spikformer_deploy.analysis import layer_rows, load_profile
from spikformer_deploy.analysis.feasibility import valid_taps
from spikformer_deploy.analysis.loihi_model import place_groups, split_flow
from spikformer_deploy.analysis.report import build_report, to_html, to_markdown
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.cli import main
from spikformer_deploy.analysis.rates import random_model
from spikformer_deploy.model import SpikformerConfig
from spikformer_deploy.pipeline import integer_graph


def expected_totals(cfg: SpikformerConfig) -> tuple[int, int]:
    """Neurons and existing synapses from the config alone (3x3 pad-1 convs, 3x3/2 pad-1 OR pools)."""
    conv_taps = lambda n: (3 * n - 2) ** 2  # noqa: E731  valid taps of a 3x3, pad 1, stride 1 conv on n x n
    pool_taps = lambda n: (3 * n // 2 - 1) ** 2  # noqa: E731  3x3, stride 2, pad 1 on even n
    neurons = synapses = 0
    size, c_in = cfg.img_size, cfg.in_channels
    for i, c in enumerate(cfg.stage_channels):
        neurons += c * size * size
        synapses += c_in * c * conv_taps(size)
        if i in cfg.pooled_stages:
            synapses += c * pool_taps(size)
            size //= 2
            neurons += c * size * size
        c_in = c
    n, d, h = size * size, cfg.dim, cfg.hidden_dim
    neurons += d * n  # rpe
    synapses += d * d * conv_taps(size)
    neurons += cfg.depth * (5 * d * n + h * n + d * n)  # q k v attn proj, fc1, fc2
    synapses += cfg.depth * (4 * d * d * n + 2 * d * h * n)  # attn_lif has no synapses (the attention feeds it)
    return neurons, synapses


def test_valid_taps_by_enumeration():
    assert valid_taps(4, 4, 3, 1, 1, 4, 4) == (3 * 4 - 2) ** 2
    assert valid_taps(8, 8, 3, 2, 1, 4, 4) == (3 * 8 // 2 - 1) ** 2


def run_report(cfg, target="loihi2", chips=None, samples=1, bn_bias=0.0):
    """``bn_bias`` added to every BatchNorm bias drives the random model's neurons to fire."""
    model = random_model(cfg, seed=0, bn_bias=bn_bias)
    x = torch.rand(cfg.input_shape(batch=samples))
    graph = integer_graph(model, x)
    rows = layer_rows(graph, Simulator(graph).run(x).counters)
    return build_report(graph, rows, load_profile(target), load_profile("h200_sxm"), chips, "synthetic"), cfg


@pytest.mark.parametrize("cfg,more_than_one_chip", [
    (SpikformerConfig("cifar10", 384, 4, 12, 4, 10, 3, 32, 4), True),  # 1.5 M neurons: > 1 M per chip
    (SpikformerConfig("imagenet", 768, 8, 12, 4, 1000, 3, 224, 4), True),
])
def test_paper_size_models(cfg, more_than_one_chip):
    report, cfg = run_report(cfg, bn_bias=1.0)
    neurons, synapses = expected_totals(cfg)
    assert report["totals"]["neurons"] == neurons and report["totals"]["synapses"] == synapses
    assert (report["totals"]["chips"] > 1) == more_than_one_chip
    assert report["verdict"]["state"] in ("fits", "fits with changes", "does not fit")
    names = {c["name"] for c in report["checks"]}
    assert {"weight precision", "24-bit state", "residual stream", "delays", "fan-in", "attention placement",
            "input encoding"} <= names
    assert report["performance"]["time_steps"] > cfg.T and report["performance"]["inferences_per_s"] > 0
    perf = report["performance"]
    boundaries = perf["interchip_boundaries"]
    assert boundaries and all(b["from_chip"] != b["to_chip"] for b in boundaries)  # spikes cross chips
    busiest = max(sum(b["bits_per_step"] for b in boundaries if b["from_chip"] == c)
                  for c in {b["from_chip"] for b in boundaries})
    assert perf["step_terms_s"]["interchip"] == pytest.approx(busiest * load_profile("loihi2")["t_interchip_bit"])
    assert perf["step_latency_s"] == pytest.approx(max(perf["step_terms_s"]["neurocores"],
                                                       perf["step_terms_s"]["embedded"])
                                                   + perf["step_terms_s"]["barrier"] + perf["step_terms_s"]["interchip"])
    json.dumps(report)


def test_placement_and_chip_crossings_by_hand():
    """Groups of 100, 100 and 50 cores on chips of 120: A on chip 0; B 20 cores on chip 0, 80 on chip 1; C on chip 1
    (40) and chip 2 (10). A spike of A lands in B on chip 1 with B's share there (0.8)."""
    placed = place_groups([("A", 100), ("B", 100), ("C", 50)], 120)
    assert placed == {"A": {0: 100}, "B": {0: 20, 1: 80}, "C": {1: 40, 2: 10}}
    (flow,) = split_flow(placed, "A", "B", 1000.0, "binary")
    assert (flow["from_chip"], flow["to_chip"], flow["spikes_per_step"]) == (0, 1, pytest.approx(800.0))
    flows = {(f["from_chip"], f["to_chip"]): f["spikes_per_step"] for f in split_flow(placed, "B", "C", 500.0,
                                                                                      "binary")}
    # B's chip-0 share (0.2) reaches C's chips 1 (0.8) and 2 (0.2); its chip-1 share (0.8) reaches chip 2 (0.2)
    assert flows == {(0, 1): pytest.approx(80.0), (0, 2): pytest.approx(20.0), (1, 2): pytest.approx(80.0)}


def test_loihi1_needs_split_residuals_and_host_input():
    report, cfg = run_report(SpikformerConfig("cifar10", 64, 2, 4, 4, 10, 1, 16, 4), target="loihi", samples=2)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["residual stream"]["status"] == "change" and checks["input encoding"]["status"] == "change"
    q = next(g for g in report["groups"] if g["name"] == "block.1.attn.q_lif")
    assert q["sources"] == 4  # block 1 reads a sum of 4 binary sources: 4 copies of its synapses
    neurons, synapses = expected_totals(cfg)
    extra = sum(g["synapses"] * (1 - 1 / g["sources"]) for g in report["groups"])
    assert report["totals"]["synapses"] == pytest.approx(synapses + extra)


def test_chip_budget_decides_the_verdict():
    report, _ = run_report(SpikformerConfig("imagenet", 768, 8, 12, 4, 1000, 3, 224, 4), chips=1)
    assert report["verdict"]["state"] == "does not fit"
    assert any("chips" in r for r in report["verdict"]["reasons"])
    md, html = to_markdown(report), to_html(report)
    assert "Verdict: does not fit" in md and html.count("data:image/png;base64,") == 4


def test_report_cli_bundled_and_artifact(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--format", "html", "-o", str(out)]) == 0
    assert out.exists() and (tmp_path / "r.md").exists() and (tmp_path / "r.json").exists()
    data = json.loads((tmp_path / "r.json").read_text())
    # auto places the attention on neurocores: the same single chip, no embedded-core program to change
    assert data["verdict"]["state"] == "fits" and data["totals"]["chips"] == 1
    placements = {p["placement"]: p for p in data["placements"]["rows"]}
    assert data["placements"]["chosen"] == "neurocores" and placements["embedded"]["verdict"] == "fits with changes"
    assert placements["neurocores"]["pipeline_depth"] == placements["embedded"]["pipeline_depth"] + 4  # AND, count, product, sum
    assert "Attention placement" in out.read_text() and "| embedded |" in (tmp_path / "r.md").read_text()
    assert {v["kind"] for v in data["limits"].values()} == {"published", "estimate", "measured", "calibrated",
                                                            "assumption"}
    capsys.readouterr()
    artifact = tmp_path / "a"
    assert main(["export", "-o", str(artifact), "--target", "onnx", "--calibration", "64"]) == 0
    capsys.readouterr()
    assert main(["report", str(artifact), "--format", "json", "--samples", "32"]) == 0
    from_artifact = json.loads(capsys.readouterr().out)
    assert from_artifact["totals"] == data["totals"]
    (artifact / "graph.json").write_text("{}")
    assert main(["report", str(artifact)]) == 2
