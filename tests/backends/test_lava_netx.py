"""Lava process graph and netx stem against the simulator: every spike of every layer, on >= 8 inputs."""
import json

import numpy as np
import pytest
import torch

from support import load_fixture

from spikformer_deploy.analysis import layer_rows, load_profile
from spikformer_deploy.artifact import load_artifact
from spikformer_deploy.analysis.report import build_report
from spikformer_deploy.backends.lava import LavaNetwork
from spikformer_deploy.backends.netx import run_netx_stem, stem_layers, write_netx_stem
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.cli import main
from spikformer_deploy.errors import DeployError
from spikformer_deploy.ir.ops import AttentionAnd, LoihiLIF, OrPool
from spikformer_deploy.pipeline import integer_graph


def eight_inputs(variant):
    """The fixture's inputs plus seeded ones of the same kind, 8 in all."""
    model, x, *_ = load_fixture(variant)
    gen = torch.Generator().manual_seed(5)
    if variant == "cifar10dvs":
        extra = torch.poisson(torch.full((8 - len(x), *x.shape[1:]), 0.3), generator=gen)
    else:
        extra = torch.randn(8 - len(x), *x.shape[1:], generator=gen)
    return model, torch.cat([x, extra])


@pytest.mark.parametrize("variant", ["cifar10", "imagenet", "cifar10dvs"])
def test_lava_equals_simulator_on_fixture_configs(variant):
    """The attention on neurocores, standard processes only (the embedded placement: the bundled model's export in
    tests/passes/test_lower_attention.py)."""
    model, x = eight_inputs(variant)
    graph = integer_graph(model, x, attention="neurocores")
    sim = Simulator(graph, record="spikes").run(x)
    network = LavaNetwork(graph)
    lava = network.run(x.numpy())
    # one delay rule: the report's pipeline depth is the depth of the Lava graph whose spikes are checked below
    report = build_report(graph, layer_rows(graph, sim.counters), load_profile("loihi2"), None, None, "fixture")
    assert report["performance"]["pipeline_depth"] == max(network.depths.values())
    assert lava.steps == max(network.depths.values()) + len(x) * graph.steps + 1
    assert set(lava.outputs) == set(sim.outputs)
    for name, spikes in lava.outputs.items():
        np.testing.assert_array_equal(spikes, sim.outputs[name].numpy(), err_msg=name)
    assert sum(int(s.sum()) for s in lava.outputs.values()) > 0
    np.testing.assert_array_equal(lava.int_logits, sim.int_logits.numpy())
    np.testing.assert_array_equal(lava.predictions, sim.predictions.numpy())
    assert any(name.endswith(".and") for name in lava.outputs)  # the AND neurons compared too
    kinds = {name.rsplit(".", 1)[1]: v["kind"] for name, v in lava.process_classes.items()}
    assert {"Sparse", "LIF", "GradedVec", "ProdNeuron"} <= set(kinds) and set(kinds.values()) == {"standard",
                                                                                                  "host I/O"}


@pytest.mark.parametrize("variant", ["cifar10", "cifar10dvs"])
def test_netx_stem_loads_and_equals_simulator(tmp_path, variant):
    model, x = eight_inputs(variant)
    graph = integer_graph(model, x)
    (path,) = write_netx_stem(graph, tmp_path)
    stem = run_netx_stem(path, graph, x.numpy())
    assert list(stem) == stem_layers(graph) and len(stem) >= 5
    sim = Simulator(graph, record=set(stem)).run(x)
    for name, spikes in stem.items():
        np.testing.assert_array_equal(spikes, sim.outputs[name].numpy(), err_msg=name)


def test_verify_runs_lava_and_netx_on_the_bundled_export(tmp_path, capsys):
    artifact = tmp_path / "bundled"
    assert main(["export", "-o", str(artifact), "--target", "loihi2", "--calibration", "128"]) == 0
    capsys.readouterr()
    assert main(["verify", str(artifact), "--json", "--samples", "8"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["spikes_equal"] and result["predictions_equal"] and result["netx_stem_equal"]
    assert result["samples"] == 8 and len(result["layers"]) == 15  # 14 neuron groups + the attention's ANDs
    assert all(v["equal"] == v["total"] > 0 for v in result["layers"].values())
    # the process classes it built, by kind: with the attention on neurocores (auto's choice here) no custom class
    # is left (a Loihi 2 compiler places only lava.proc processes); one LIF process per LIF, per OR pool (a LIF
    # without memory) and for the AND neurons, one recorder per recorded layer and one for the stream the host-side
    # head reads
    classes = result["lava_process_classes"]
    graph, _ = load_artifact(artifact)
    assert result["lava_custom_processes"] == []
    assert classes["lava.proc.lif.process.LIF"]["count"] == len(graph.of_type(LoihiLIF, OrPool, AttentionAnd))
    assert classes["spikformer_deploy.backends.lava_io.Recorder"] == {"count": 16, "kind": "host I/O"}
    assert {v["kind"] for k, v in classes.items() if k.startswith("lava.proc.")} == {"standard"}
    assert sum(v["count"] for v in classes.values()) == result["lava_processes"]


def test_lava_refuses_a_float_graph():
    from spikformer_deploy.pipeline import float_graph

    model, *_ = load_fixture("cifar10")
    with pytest.raises(DeployError, match="integer graph"):
        LavaNetwork(float_graph(model))
