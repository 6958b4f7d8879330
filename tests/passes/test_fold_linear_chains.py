"""Meta-SpikeFormer's chains of synapses (RepConv, SepConv's depthwise + pointwise) on the deploy IR: each fold
equals its original chain of torch modules (float64, random inputs, borders included), every form (folded, kept
apart on relays, the mapper's choice) reproduces the original code's fixture, and the record says what was chosen
and why."""
import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from support import assert_reproduces_fixture, load_family_fixture

from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.errors import GraphError
from spikformer_deploy.frontends import trace
from spikformer_deploy.ir import Graph
from spikformer_deploy.ir.ops import LIF, Conv2d, DepthwiseConv2d, Input, StreamSum
from spikformer_deploy.model.metaspikeformer import frames
from spikformer_deploy.passes import fold_batchnorm, fold_linear_chains, linear_chains
from spikformer_deploy.pipeline import float_graph

CASE = "metaspikeformer/imagenet"


@pytest.fixture(scope="module")
def fixture():
    return load_family_fixture(CASE)


def _conv(op, x: torch.Tensor) -> torch.Tensor:
    t = lambda a: None if a is None else torch.from_numpy(np.array(a, dtype=np.float64))  # noqa: E731
    return F.conv2d(x, t(op.weight), t(op.bias), op.stride, op.padding, 1, op.groups)


def test_each_folded_chain_is_its_original(fixture):
    model = copy.deepcopy(fixture[0]).double().eval()
    graph = float_graph(fixture[0], chains="folded")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 24, 6, 6, dtype=torch.float64, generator=gen)
    rep, bn = model.block3[0].attn.q_conv  # 1x1 -> BN-valued border -> 3x3 depthwise -> 1x1 -> BN, then a BN
    folded = graph.nodes["block3.0.attn.q_conv.0.body.2.1"].op
    assert type(folded) is Conv2d and folded.weight.shape == (24, 24, 3, 3) and folded.padding == (1, 1)
    sep = model.ConvBlock1_2[0].Conv  # 7x7 depthwise -> 1x1 -> BN
    tail = float_graph(fixture[0], chains="folded").nodes["ConvBlock1_2.0.Conv.pwconv2"].op
    y = torch.randn(1, 2, 16, 24, 24, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        assert torch.allclose(_conv(folded, x), bn(rep(x)), rtol=0, atol=1e-12)
        assert torch.allclose(frames(lambda z: _conv(tail, z), y), frames(sep.bn2, frames(
            sep.pwconv2, frames(sep.dwconv, y))), rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", ["auto", "folded", "apart"])
def test_every_form_reproduces_the_original(fixture, form):
    model, x, logits, _, spikes = fixture
    traced = fold_batchnorm(trace(model))
    chains = linear_chains(traced)
    assert len(chains) == 4 + 4 * 8  # each SepConv's tail, each RepConv projection
    graph = float_graph(model, chains=form)
    record = graph.record("fold_linear_chains")
    assert [e["chain"] for e in record.nodes.values()] == chains
    apart = {k for k, e in record.nodes.items() if e["form"] == "apart"}
    assert apart == {"folded": set(), "apart": {c[-1] for c in chains},
                     "auto": {k for k, e in record.nodes.items() if e["choice"] == "apart"}}[form]
    relays = [n for n in graph.of_type(StreamSum) if n.name.endswith(".relay")]
    assert len(relays) == sum(len(c) - 1 for c in chains if c[-1] in apart)
    assert bool(graph.of_type(DepthwiseConv2d)) == bool(apart)
    assert_reproduces_fixture(Simulator(graph).run(x), logits, spikes)


def test_the_mapper_chooses_by_cores_and_the_record_says_so(fixture):
    record = float_graph(fixture[0]).record("fold_linear_chains")
    for last, entry in record.nodes.items():
        # apart only with one relay read by a synapse that writes the stream: RepConv's two relays into a LIF
        # would squeeze its three weight sets into one membrane's range (exponents >= 0)
        assert entry["apart_keeps_precision"] == (len(entry["chain"]) == 2), last
        assert entry["choice"] == ("apart" if entry["apart_keeps_precision"] and entry["cores_apart"] <
                                   entry["cores_folded"] else "folded"), last
        assert entry["form"] == entry["choice"] and entry["profile"] == "loihi2"
    # at this size: each RepConv projection folds (1 core against 3 with its two relay groups); a 7x7 depthwise +
    # pointwise stays apart where the dense 7x7's synaptic memory costs more cores than the relays
    rep = [e for k, e in record.nodes.items() if ".attn." in k]
    sep = {k: e for k, e in record.nodes.items() if ".Conv." in k}
    assert all(e["form"] == "folded" and e["weights_folded"] > e["weights_apart"] for e in rep)
    assert all(e["synapses_folded"] > e["synapses_apart"] for e in rep)  # yet fewer cores: no relay neurons
    assert {k for k, e in sep.items() if e["form"] == "apart"} == {
        "ConvBlock1_2.0.Conv.pwconv2", "ConvBlock2_1.0.Conv.pwconv2", "ConvBlock2_2.0.Conv.pwconv2"}
    assert all(e["synapses_apart"] < e["synapses_folded"] for e in sep.values())


def test_the_pass_leaves_its_input_alone_and_names_what_it_cannot_fold():
    g = Graph()
    g.add("input", Input(shape=(2, 5, 5), kind="image", steps=1))
    g.add("a", Conv2d(weight=np.ones((3, 2, 3, 3))), ["input"])
    g.add("b", Conv2d(weight=np.ones((3, 3, 3, 3))), ["a"])  # 3x3 padded after 3x3: no exact fold
    assert linear_chains(g) == [["a", "b"]]
    with pytest.raises(GraphError, match="^b: a Conv2d \\(3, 3\\) then a Conv2d \\(3, 3\\) with padding \\(1, 1\\) "
                                         "has no exact fold$"):
        fold_linear_chains(g)
    apart = fold_linear_chains(g, keep_apart={"b"})
    assert list(apart.nodes) == ["input", "a", "a.relay", "b"] and list(g.nodes) == ["input", "a", "b"]
    with pytest.raises(GraphError, match="no chain of synapses ends at a$"):
        fold_linear_chains(g, keep_apart={"a"})


def test_the_distillation_head_folds_into_one(fixture, tmp_path):
    from spikformer_deploy import load_checkpoint
    from spikformer_deploy.model.checkpoint import safe_torch_load

    model, x = fixture[0], fixture[1]
    sd = safe_torch_load(model.source["path"])["model"]
    gen = torch.Generator().manual_seed(0)
    sd["head_kd.weight"] = torch.randn(sd["head.weight"].shape, generator=gen)
    sd["head_kd.bias"] = torch.randn(sd["head.bias"].shape, generator=gen)
    path = tmp_path / "kd.pth"
    torch.save({"model": sd, "args": {"time_steps": 4}}, path)
    kd = load_checkpoint(path, num_heads=4, img_size=96)
    assert kd.config.kd
    graph = float_graph(kd)
    assert graph.record("fold_heads").settings["heads"] == 2 and len(graph.of_type(type(graph.output.op))) == 1
    with torch.no_grad():
        expected = kd.double()(x.double())
    assert torch.allclose(Simulator(graph).run(x).logits.double(), expected, rtol=0, atol=1e-5)


def _repconv_graph() -> Graph:
    """conv -> LIF -> a RepConv-shaped chain (1x1 with bias and a zero border, 3x3 depthwise unpadded, 1x1) -> LIF."""
    gen = np.random.default_rng(3)
    g = Graph()
    g.add("input", Input(shape=(2, 6, 6), kind="image", steps=2))
    g.add("conv", Conv2d(weight=gen.normal(0, 1, (4, 2, 3, 3)), bias=gen.normal(0.5, 0.2, 4)), ["input"])
    g.add("lif", LIF(v_threshold=1.0), ["conv"])
    g.add("one", Conv2d(weight=gen.normal(0, 1, (4, 4, 1, 1)), bias=gen.normal(0, 1, 4), padding=1), ["lif"])
    g.add("dw", DepthwiseConv2d(weight=gen.normal(0, 1, (4, 1, 3, 3)), padding=0), ["one"])
    g.add("pw", Conv2d(weight=gen.normal(0, 1, (3, 4, 1, 1)), bias=gen.normal(1.0, 0.2, 3), padding=0), ["dw"])
    g.add("out", LIF(v_threshold=1.0), ["pw"])
    return g


def test_chains_kept_apart_run_on_lava_as_in_the_simulator():
    """The chain on relays, the first relay carrying a bias into the depthwise conv that reads it (Meta-SpikeFormer's
    RepConv kept apart): Lava's fixed-point run equals the simulator spike for spike. (The whole fixture with every
    chain apart, ~600 Lava processes, passed too: 77 layers equal, 5 minutes; too long for the suite.)"""
    from spikformer_deploy.backends.lava import LavaNetwork
    from spikformer_deploy.passes import quantize
    from spikformer_deploy.pipeline import calibrate

    x = torch.rand(4, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    apart = fold_linear_chains(_repconv_graph(), keep_apart={"pw"})
    assert [n.name for n in apart.of_type(StreamSum)] == ["one.relay", "dw.relay"]
    graph = quantize(apart, calibrate(apart, x))
    assert graph.record("quantize").nodes["dw"]["stream_scale"] > 0  # the depthwise conv writes a relay segment
    sim = Simulator(graph, record="spikes").run(x)
    lava = LavaNetwork(graph).run(x.numpy())
    assert 0 < sum(int(s.sum()) for s in lava.outputs.values())
    for name, spikes in lava.outputs.items():
        np.testing.assert_array_equal(spikes, sim.outputs[name].numpy(), err_msg=name)
    # the float chain folded and kept apart are one function: the same spikes in the float graph
    folded = Simulator(fold_linear_chains(_repconv_graph()), record="spikes").run(x)
    assert torch.equal(folded.outputs["out"], Simulator(apart, record="spikes").run(x).outputs["out"])


@pytest.mark.parametrize("form", ["folded", "apart"])
def test_the_command_line_forces_a_form_and_the_report_says_which(tmp_path, capsys, form):
    from support import FAMILY, run_cli

    data = tmp_path / "x.npz"
    np.savez(data, x=load_family_fixture(CASE)[1][:1].numpy())
    ckpt = str(FAMILY / CASE / "checkpoint-0.pth")
    out = tmp_path / "report.html"
    rc, _, err = run_cli(capsys, "report", ckpt, "--num-heads=4", "--img-size=96", "--data", str(data),
                         "--calibration-data", str(data), "--chains", form, "--format", "html", "-o", str(out))
    assert rc == 0, err
    report = json.loads(out.with_suffix(".json").read_text())
    chains = [f for f in report["folds"] if f["fold"] == "chain"]
    assert len(chains) == 36 and {f["form"] for f in chains} == {form}
    text = out.with_suffix(".md").read_text()
    assert "## Chains of synapses: folded or kept apart" in text
    assert sum(f"| {form} |" in line and "forced" in line for line in text.splitlines()) >= 1
    html = out.read_text()
    assert '<table id="folds">' in html and ": forced</td>" in html
    assert html.count(f"<td>{form}</td>") == 36
    rc, _, err = run_cli(capsys, "report", ckpt, "--num-heads=4", "--img-size=96", "--chains", "sideways")
    assert rc != 0 and "sideways" in err
