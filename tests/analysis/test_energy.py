"""Energy: the paper's published ImageNet energies, per-layer sums, each convention against its own formula."""
import numpy as np
import pytest
import torch

from support import BUNDLED

from spikformer_deploy import load_checkpoint
from spikformer_deploy.analysis import builtin_profiles, estimate, layer_rows, load_profile
from spikformer_deploy.analysis.energy import paper_energy_from_totals
from spikformer_deploy.analysis.feasibility import map_network
from spikformer_deploy.analysis.loihi_model import dynamic_energy, graph_activity, step_time
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.data import digits_split
from spikformer_deploy.pipeline import integer_graph

# Spikformer paper, ImageNet table: model -> (SOPs, published energy in mJ)
PAPER_IMAGENET = {"8-384": (6.82e9, 7.734), "8-512": (11.09e9, 11.577), "8-768": (22.09e9, 21.477)}


def test_paper_convention_reproduces_published_imagenet_energies():
    cmos = load_profile("cmos45nm")
    # first conv of Spikformer-8-512 at 224x224: 3 -> 64 channels, 3x3, T = 4 steps. The paper's three energies all
    # use this one first-layer figure (1.596 mJ), whatever the model's width.
    first_conv_macs = 3 * 64 * 9 * 224 * 224 * 4
    for name, (sops, published_mj) in PAPER_IMAGENET.items():
        ours = paper_energy_from_totals(sops, first_conv_macs, cmos) * 1e3
        assert ours == pytest.approx(published_mj, rel=0.005), name


@pytest.fixture(scope="module")
def bundled_run():
    model = load_checkpoint(BUNDLED)
    x_train, _, x_test, _ = digits_split(model.config.img_size, seed=0)
    graph = integer_graph(model, x_train[:128])
    result = Simulator(graph).run(x_test[:100])
    return graph, layer_rows(graph, result.counters), model.config.T


def test_every_builtin_profile_gives_estimates(bundled_run):
    graph, rows, steps = bundled_run
    assert {"cmos45nm", "loihi", "loihi2", "h100_sxm", "h200_sxm", "a100_sxm"} <= set(builtin_profiles())
    for name in builtin_profiles():
        p = load_profile(name)
        mapping = map_network(graph, p) if p.model == "loihi" else None
        for e in estimate(rows, graph, p, mapping):
            assert e.total > 0 and e.total == pytest.approx(sum(e.per_layer.values()))
            assert all(v >= 0 for v in e.per_layer.values()) and e.assumptions


def test_per_op_conventions_match_their_formulas(bundled_run):
    graph, rows, steps = bundled_run
    cmos = load_profile("cmos45nm")
    paper, corrected, *_ = estimate(rows, graph, cmos)
    synapses = [r for r in rows if r.op in ("Conv2d", "Dense", "Head")]
    expected = sum(4.6e-12 * r.macs + 0.9e-12 * r.sops_paper for r in synapses)
    assert paper.total == pytest.approx(expected, rel=1e-12)
    graded = [r for r in rows if r.op == "Dense" and not r.binary_input]
    assert {r.name.rsplit(".", 1)[1] for r in graded} == {"q_linear", "k_linear", "v_linear", "fc1_linear"}
    for r in graded:  # residual-stream readers pay a MAC per synaptic event in the corrected convention
        assert corrected.per_layer[r.name] == pytest.approx(4.6e-12 * r.in_events * 64 * (4 if "fc1" in
                                                                                              r.name else 1))
    assert corrected.per_layer["block.0.attn.ssa"] == pytest.approx(0.9e-12 * next(
        r.adds for r in rows if r.op == "SpikingAttention"))


def test_loihi_convention_matches_its_formula(bundled_run):
    """Recomputed here from the rows with Loihi 1's published figures and its measured static power."""
    graph, rows, steps = bundled_run
    p = load_profile("loihi")
    mapping = map_network(graph, p)
    (e,) = estimate(rows, graph, p, mapping)
    synops = sum(r.event_synops for r in rows if r.op in ("Conv2d", "Dense", "OrPool"))
    updates = sum(r.neuron_updates for r in rows)
    spikes = sum(r.spikes for r in rows if r.op in ("LoihiLIF", "OrPool"))
    host = sum(r.ands / 32 + r.adds for r in rows if r.op == "SpikingAttention") + \
        sum(r.macs + r.adds for r in rows if r.op == "Head")
    dynamic = 23.6e-12 * synops + 81e-12 * updates + (1.7e-12 + 2 * 3.5e-12) * spikes + 20e-12 * host
    assert e.total - e.per_layer["static"] == pytest.approx(dynamic, rel=1e-9)
    assert e.extra["dynamic_J"] == pytest.approx(dynamic, rel=1e-9) and e.extra["static_J"] == e.per_layer["static"]
    assert e.extra["chips"] == mapping["chips"] == 1 and e.extra["cores"] == mapping["cores"]
    assert e.per_layer["static"] == pytest.approx(0.0295 * 1 * steps * e.extra["step_time_s"])
    assert e.per_layer["interchip"] == 0  # one chip


def test_loihi_layers_sum_to_the_step_model(bundled_run):
    """The per-layer table and the step activity the calibration fits are one model: the layers' dynamic energy
    (less the head, which runs on the host) is T x the step model's."""
    graph, rows, steps = bundled_run
    for name in ("loihi", "loihi2"):
        p = load_profile(name)
        mapping = map_network(graph, p)
        (e,) = estimate(rows, graph, p, mapping)
        act, _ = graph_activity(graph, rows, mapping, p)
        head = e.per_layer[next(r.name for r in rows if r.op == "Head")]
        assert e.extra["dynamic_J"] - head == pytest.approx(steps * sum(dynamic_energy(act, p).values()), rel=1e-9)
        assert e.extra["step_time_s"] == step_time(act, p)[0]


def test_small_model_says_static_dominates(bundled_run):
    """The bundled model uses a few cores of one Loihi 2 chip: the whole chip's static power dominates, and the
    estimate says so."""
    graph, rows, _ = bundled_run
    (e,) = estimate(rows, graph, load_profile("loihi2"), map_network(graph, load_profile("loihi2")))
    assert e.extra["static_J"] > e.extra["dynamic_J"]
    assert any(a.startswith("static > dynamic: 1 chip(s) idle around") for a in e.assumptions)
    assert e.extra["static_range_J"][0] < e.extra["static_J"] < e.extra["static_range_J"][1]


def test_gpu_analytic_roofline_and_launches(bundled_run):
    """Recomputed here from the graph: per layer max(FLOPs / rate, bytes / bandwidth), launches x latency."""
    graph, rows, steps = bundled_run
    (e,) = estimate(rows, graph, load_profile("h200_sxm"))
    rate, bandwidth, latency = 989.4e12 * 0.35, 4.8e12, 10e-6
    launches = 0
    for r in rows:
        op = graph.nodes[r.name].op
        launches += 2 if op.synapse else 3 * steps if r.op in ("LoihiLIF", "LIF") else 3 if r.op == \
            "SpikingAttention" else 1

    def seconds(batch):
        busy = 0.0
        for r in rows:
            node = graph.nodes[r.name]
            weights = 2 * node.op.weight.size if r.op in ("Conv2d", "Dense", "Head") else 0
            elements = sum(np.prod(graph.nodes[i].shape) for i in node.inputs) + np.prod(node.shape)
            busy += max(2 * r.dense_macs * batch / rate, (weights + 2 * elements * steps * batch) / bandwidth)
        return busy, busy + launches * latency

    for key, batch in (("batch_1", 1), ("throughput", 256)):
        busy, total = seconds(batch)
        run = e.extra[key]
        assert run["launches"] == launches and run["seconds"] == pytest.approx(total)
        assert run["power_W"] == pytest.approx(80 + (700 - 80) * busy / total)
        assert run["J_per_input"] == pytest.approx(run["power_W"] * total / batch)
    assert e.total == pytest.approx(e.extra["batch_1"]["J_per_input"])
    # batch 1 is launch-bound: the idle power over the launches alone is a floor; batching amortises it
    assert e.total > 80 * launches * latency and e.extra["throughput"]["J_per_input"] < e.total / 50


def test_memory_aware_and_int8_ann_baselines(bundled_run):
    graph, rows, steps = bundled_run
    paper, corrected, memory, ann = estimate(rows, graph, load_profile("cmos45nm"))
    weight, state = 10e-12 / 8, 10e-12  # an 8-bit weight, a 32-bit state read + write (8 KB SRAM, Horowitz)
    expected = corrected.total
    for r in rows:
        if r.op in ("Conv2d", "Dense"):
            expected += weight * (r.macs if r.analog_input else r.event_synops)
        elif r.op in ("LoihiLIF", "OrPool"):
            expected += (0.9e-12 + state) * r.neuron_updates
        elif r.op == "Head":
            expected += weight * r.macs
    assert memory.total == pytest.approx(expected, rel=1e-12) and memory.convention == "memory_aware"
    mac = 0.2e-12 + 0.1e-12 + 2 * weight
    expected = sum(mac * r.dense_macs / steps for r in rows if r.op in ("Conv2d", "Dense", "Head",
                                                                        "SpikingAttention"))
    expected += sum((0.1e-12 + weight) * r.neurons for r in rows if r.op in ("LoihiLIF", "OrPool"))
    assert ann.total == pytest.approx(expected, rel=1e-12) and ann.convention == "int8_ann"
    assert paper.total < corrected.total < memory.total


def test_gpu_measurement_says_why_without_cuda():
    from spikformer_deploy.gpu_measure import GpuMeasurementUnavailable, measure_float_reference

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the measured path runs instead")
    with pytest.raises(GpuMeasurementUnavailable, match="CUDA is not available"):
        measure_float_reference(load_checkpoint(BUNDLED), torch.zeros(1, 1, 16, 16))


def test_energy_and_report_share_one_latency_model(bundled_run):
    from spikformer_deploy.analysis.feasibility import performance

    graph, rows, _ = bundled_run
    p = load_profile("loihi2")
    mapping = map_network(graph, p)
    (e,) = estimate(rows, graph, p, mapping)
    perf = performance(graph, p, mapping, rows)
    assert e.extra["step_time_s"] == perf["step_latency_s"] > 0
    assert e.extra["latency_s"] == perf["latency_s"] == perf["time_steps"] * perf["step_latency_s"]
    assert perf["time_steps"] == graph.steps + max(graph.pipeline_depths().values())
    from spikformer_deploy.analysis.report import build_report

    report = build_report(graph, rows, p, None, None, "digits")  # what `report` prints for the same run
    (energy,) = report["energy"]
    assert energy["total_J"] == e.total and energy["range_J"] == list(e.range)
    assert energy["latency_s"] == report["performance"]["latency_s"] == e.extra["latency_s"]
