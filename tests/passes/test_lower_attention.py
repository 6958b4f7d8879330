"""The attention on neurocores (``lower_attention``): the same integers as the embedded attention, counted
synapse by synapse, placed by the mapper, chosen by the chip budget, exported as asked (Lava runs it on standard
processes only in tests/backends/test_lava_netx.py: the three original fixtures and the bundled export)."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from support import BUNDLED, load_fixture, run_cli

from spikformer_deploy import load_checkpoint
from spikformer_deploy.analysis import layer_rows, load_profile
from spikformer_deploy.analysis.conventions import conventions_report
from spikformer_deploy.analysis.feasibility import choose_placement, map_network
from spikformer_deploy.backends.lava.attention_synapses import stage_synapses
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.data import digits_split
from spikformer_deploy.errors import GraphError
from spikformer_deploy.ir.ops import ATTENTION_STAGES, AttentionSum, SpikingAttention
from spikformer_deploy.ir.serialize import load_graph, save_graph
from spikformer_deploy.passes import lower_attention, run_passes
from spikformer_deploy.pipeline import float_graph, integer_graph, place_attention
from spikformer_deploy.runner import run_local, simulators


def bundled_graph(samples=16):
    x = digits_split(16)[0][:samples]  # the bundled model reads 16 x 16 digits
    return integer_graph(load_checkpoint(BUNDLED), x), x


def with_order(graph, order):
    g = graph.copy()
    for node in g.of_type(SpikingAttention):
        node.op = dataclasses.replace(node.op, order=order)
    return g


@pytest.mark.parametrize("order", ["q_kv", "qk_v"])
@pytest.mark.parametrize("source", ["bundled", "cifar10", "imagenet", "cifar10dvs"])
def test_same_spikes_and_logits_as_the_embedded_attention(source, order):
    if source == "bundled":
        graph, x = bundled_graph()
    else:
        model, x, *_ = load_fixture(source)
        graph = integer_graph(model, x)
    embedded = with_order(graph, order)
    lowered = run_passes(embedded, [lower_attention])
    a = Simulator(embedded, record="spikes").run(x)
    b = Simulator(lowered, record="spikes").run(x)
    assert set(b.outputs) - set(a.outputs) == {n.name for n in lowered.of_type(*ATTENTION_STAGES) if n.op.spiking}
    for name, spikes in a.outputs.items():
        assert torch.equal(spikes.float(), b.outputs[name].float()), name
    assert torch.equal(a.int_logits, b.int_logits)
    assert b.spike_counts[next(n.name for n in lowered.of_type(*ATTENTION_STAGES))].sum() > 0  # ANDs fired
    record = lowered.record("lower_attention")
    assert {v["order"] for v in record.nodes.values()} == {order} and all(
        v["added_hops"] == 4 for v in record.nodes.values())


def test_the_lowering_adds_what_the_wiring_says():
    graph = with_order(bundled_graph()[0], "q_kv")
    lowered = lower_attention(graph)
    (attention,) = graph.of_type(SpikingAttention)
    c, n = attention.shape
    h, d = attention.op.num_heads, attention.op.head_dim
    stages = {node.name.rsplit(".", 1)[1]: node for node in lowered.of_type(*ATTENTION_STAGES)}
    assert {k: v.shape for k, v in stages.items()} == {"and": (h * d * d, n), "count": (h * d * d, 1),
                                                        "product": (h * d * d, n), "sum": (c, n)}
    assert lowered.consumers(f"{attention.name}.sum")[0].name == graph.consumers(attention.name)[0].name
    depth, before = lowered.pipeline_depths(), graph.pipeline_depths()
    assert depth[f"{attention.name}.sum"] == before[attention.name] + 4 and max(depth.values()) == max(
        before.values()) + 4
    with pytest.raises(GraphError, match="integer graph"):
        lower_attention(float_graph(load_checkpoint(BUNDLED)))


@pytest.mark.parametrize("order", ["q_kv", "qk_v"])
def test_counters_equal_the_synapses_one_by_one(order):
    """Every synaptic event of every stage, counted from the synapse lists (written from the stage definitions,
    as Lava's matrices are) and the recorded inputs: the counters' closed forms must agree."""
    graph, x = bundled_graph(8)
    lowered = lower_attention(with_order(graph, order))
    stages = lowered.of_type(*ATTENTION_STAGES)
    inputs = {i for node in stages for i in node.inputs}
    result = Simulator(lowered, record=inputs | {node.name for node in stages}).run(x)
    counters = result.counters
    for node in stages:
        tokens = lowered.nodes[node.inputs[-1]].shape[1]
        events = 0.0
        for src, (_, _, in_c, in_n) in zip(node.inputs, stage_synapses(node.op, tokens)):
            out = result.outputs[src].double()  # [T, B, tokens, channels]
            events += float((out[:, :, in_n, in_c] != 0).sum())
        assert counters.total(node.name, "sops") * len(x) == events, node.name
        if not node.op.spiking and node.op.neuron_group:
            out = result.outputs[node.name]
            assert counters.total(node.name, "spikes") * len(x) == float((out != 0).sum())
            assert counters.total(node.name, "neuron_updates") * len(x) == out.numel()


def test_conventions_and_additions_do_not_depend_on_the_placement():
    """The published counting conventions describe the model, not where its attention runs; the additions of the
    embedded attention are the count and sum synapses' events on neurocores."""
    graph, x = bundled_graph()
    lowered = lower_attention(graph)
    rows = {name: layer_rows(g, run_local(*simulators(g, None), x, 16).counters)
            for name, g in (("embedded", graph), ("neurocores", lowered))}
    (attention,) = graph.of_type(SpikingAttention)
    adds = next(r.adds for r in rows["embedded"] if r.name == attention.name)
    assert adds > 0 and adds == sum(r.adds for r in rows["neurocores"] if r.op in ("AttentionCount", "AttentionSum"))
    profile = load_profile("cmos45nm")
    reports = {name: conventions_report(r, g, profile) for (name, r), g in zip(rows.items(), (graph, lowered))}
    for a, b in zip(*(rep["conventions"] for rep in reports.values())):
        assert a["name"] == b["name"]
        assert (a["macs"], a["acs"]) == pytest.approx((b["macs"], b["acs"]), rel=1e-12), a["name"]


def test_mapping_of_the_attention_on_neurocores():
    graph = with_order(bundled_graph()[0], "q_kv")
    lowered = lower_attention(graph)
    profile = load_profile("loihi2")
    groups = {g.name: g for g in map_network(lowered, profile)["groups"]}
    (attention,) = graph.of_type(SpikingAttention)
    c, n = attention.shape
    d = attention.op.head_dim
    pairs = attention.op.num_heads * d * d
    name = attention.name
    assert (groups[f"{name}.and"].neurons, groups[f"{name}.and"].synapses) == (pairs * n, 2 * pairs * n)
    assert (groups[f"{name}.count"].neurons, groups[f"{name}.count"].synapses) == (pairs, pairs * n)
    assert (groups[f"{name}.product"].synapses, groups[f"{name}.product"].fan_in) == (2 * pairs * n, 2)
    attn_lif = graph.consumers(name)[0].name
    assert (groups[attn_lif].synapse_node, groups[attn_lif].fan_in, groups[attn_lif].synapses) == (
        f"{name}.sum", d, c * n * d)
    assert f"{name}.sum" not in groups  # synapses only: attn_lif's
    # the synapse lists Lava builds from have exactly the synapses the mapper counts
    for stage in ("and", "count", "product"):
        node = lowered.nodes[f"{name}.{stage}"]
        assert sum(s[0].size for s in stage_synapses(node.op, n)) == groups[node.name].synapses


def test_auto_placement_follows_the_chip_budget():
    assert choose_placement({"embedded": 1, "neurocores": 1}, None)[0] == "neurocores"
    assert choose_placement({"embedded": 1, "neurocores": 2}, None)[0] == "embedded"
    assert choose_placement({"embedded": 1, "neurocores": 2}, 2)[0] == "neurocores"
    choice, why = choose_placement({"embedded": 3, "neurocores": 9}, 4)
    assert choice == "embedded" and "9 chip(s)" in why and "budget of 4" in why
    choice, why = choose_placement({"embedded": 5, "neurocores": 9}, 4)
    assert choice == "embedded" and why.startswith("neither fits the budget of 4")
    graph, _ = bundled_graph()
    assert place_attention(graph, "auto").of_type(*ATTENTION_STAGES)
    assert place_attention(graph, "auto", chips=1).of_type(*ATTENTION_STAGES)
    assert place_attention(graph, "embedded") is graph


def test_export_places_the_attention_as_asked(tmp_path, capsys):
    out = tmp_path / "a"
    rc, _, err = run_cli(capsys, "export", "--chips", "1", "--target", "loihi2", "-o", str(out), "--calibration", "32")
    assert rc == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["attention"] == {"asked": "auto", "chips_budget": 1, "placed": "neurocores"}  # fits 1 chip
    assert load_graph(out).of_type(*ATTENTION_STAGES)  # verify of it: tests/backends/test_lava_netx.py (auto)
    # the embedded placement is still there, and still custom
    rc, _, err = run_cli(capsys, "export", "--attention", "embedded", "--target", "loihi2", "-o",
                         str(tmp_path / "b"), "--calibration", "32")
    assert rc == 0, err
    rc, text, _ = run_cli(capsys, "verify", str(tmp_path / "b"), "--samples", "1", "--json")
    assert json.loads(text)["lava_custom_processes"] == [
        "spikformer_deploy.backends.lava.attention.SpikingSelfAttention"]
    # its report describes the placement it was exported with, beside the other one
    rc, text, err = run_cli(capsys, "report", str(tmp_path / "b"), "--format", "json", "--samples", "4")
    assert rc == 0, err
    placements = json.loads(text)["placements"]
    assert placements["chosen"] == "embedded" and "exported with" in placements["why"]
    assert [row["placement"] for row in placements["rows"]] == ["embedded", "neurocores"]


def test_bad_placement_is_one_line(capsys):
    rc, _, err = run_cli(capsys, "report", "--attention", "somewhere")
    assert rc == 2 and "somewhere" in err and "Traceback" not in err


def test_sum_stage_is_costed_as_synapses():
    """attn_lif's input synapses (the sum) are priced per event on Loihi and carry no neurons of their own."""
    graph, x = bundled_graph()
    lowered = lower_attention(graph)
    rows = layer_rows(lowered, run_local(*simulators(lowered, None), x, 16).counters)
    (row,) = [r for r in rows if r.op == AttentionSum.__name__]
    assert row.event_synops == row.sops == row.adds > 0 and row.neuron_updates == 0
    assert row.binary_input is False and 0 < row.input_rate < 1
    assert np.isfinite(row.input_rate)


@pytest.mark.parametrize("field,value,message", [("order", "sideways", "neither q_kv nor qk_v"),
                                                 ("head_dim", 3, "reads")])
def test_a_tampered_stage_is_one_graph_error(tmp_path, field, value, message):
    graph, _ = bundled_graph()
    save_graph(lower_attention(graph), tmp_path)
    doc = json.loads((tmp_path / "graph.json").read_text())
    stage = next(n for n in doc["nodes"] if n["op"] == "AttentionCount")
    stage["attributes"][field] = value
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(GraphError, match=message):
        load_graph(tmp_path)
