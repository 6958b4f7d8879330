"""ONNX (float reference, T unrolled) and NIR (float graph + attention extension) exports."""
import contextlib
import io

import numpy as np
import pytest
import torch

from support import BUNDLED, assert_reproduces_fixture, load_fixture

from spikformer_deploy import load_checkpoint
from spikformer_deploy.backends.nir import from_nir, read_nir, stem_subgraph, to_nir, write_nir
from spikformer_deploy.backends.onnx import write_onnx
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.data import digits_split
from spikformer_deploy.frontends import trace
from spikformer_deploy.ir import GraphError
from spikformer_deploy.passes import fold_batchnorm


def bundled_case():
    return load_checkpoint(BUNDLED), digits_split(16)[2][:64]


@pytest.mark.parametrize("case", ["cifar10", "imagenet", "cifar10dvs", "bundled"])
def test_onnx_matches_pytorch(tmp_path, case):
    import onnx
    import onnxruntime as ort

    model, x = bundled_case() if case == "bundled" else load_fixture(case)[:2]
    (path,) = write_onnx(model, tmp_path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = session.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        reference = model(x).numpy()
    assert np.abs(ours - reference).max() <= 1e-5


@pytest.mark.parametrize("variant", ["cifar10", "imagenet"])
def test_onnx_blocks_of_one_structure_are_traced_once(tmp_path, monkeypatch, variant):
    """Blocks after the first take the first one's graph with their own initializers (torch's BatchNorm folding
    redone): the file is byte for byte the one tracing every block gives."""
    from spikformer_deploy.backends.onnx import export as onnx_export
    from spikformer_deploy.model import Spikformer, SpikformerConfig

    torch.manual_seed(0)
    model = Spikformer(SpikformerConfig(variant, dim=32, depth=3, num_heads=2, mlp_ratio=4, num_classes=5,
                                        in_channels=3, img_size=32, T=2))
    for m in model.modules():  # distinct statistics per layer, as in a trained model
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.weight.data.uniform_(0.5, 1.5)
    traces = []
    trace_part = onnx_export._trace
    monkeypatch.setattr(onnx_export, "_trace", lambda *a: traces.append(a[0]) or trace_part(*a))
    (tmp_path / "once").mkdir(), (tmp_path / "every").mkdir()
    (path,) = write_onnx(model.eval(), tmp_path / "once")
    assert len(traces) == 3  # the stem, the first block and the head
    monkeypatch.setattr(onnx_export, "_initializer_sources", lambda part, proto: None)
    (every,) = write_onnx(model, tmp_path / "every")
    assert len(traces) == 3 + 5
    assert path.read_bytes() == every.read_bytes()


@pytest.mark.parametrize("variant", ["cifar10", "imagenet", "cifar10dvs"])
def test_nir_round_trip_reproduces_float_reference(tmp_path, variant):
    import nir

    model, x, logits, spikes = load_fixture(variant)
    graph = fold_batchnorm(trace(model))
    (path,) = write_nir(graph, tmp_path)
    standard = nir.read(str(path))  # standard NIR reader, no spikformer_deploy code
    lif = standard.nodes["block.0.attn.q_lif"]
    assert isinstance(lif, nir.LIF) and float(lif.tau.flat[0]) == pytest.approx(2e-4)
    ext = standard.nodes["block.0.attn.ssa"].metadata["spikformer_deploy"]
    assert ext["op"] == "SpikingAttention" and float(ext["scale"]) == model.config.attention_scale
    back = read_nir(path)
    a, b = Simulator(graph).run(x), Simulator(back).run(x)
    assert torch.equal(a.logits, b.logits)
    assert_reproduces_fixture(b, logits, spikes)


@pytest.mark.parametrize("case,last", [("cifar10", "patch_embed.proj_lif2"), ("imagenet", "patch_embed.proj_lif"),
                                       ("cifar10dvs", "patch_embed.proj_lif"), ("bundled", "patch_embed.proj_lif2")])
def test_snntorch_imports_the_stem(case, last):
    """snnTorch's importer knows Conv2d and LIF but not SumPool2d/Threshold: the stem up to its first max-pool."""
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    model, x = bundled_case() if case == "bundled" else load_fixture(case)[:2]
    graph = fold_batchnorm(trace(model))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight-scale warning with the whole array
        net = import_from_nir(stem_subgraph(to_nir(graph), last))
    utils.reset(net)
    steps = x.permute(1, 0, 2, 3, 4) if model.config.variant == "cifar10dvs" else [x] * model.config.T
    with torch.no_grad():
        theirs = torch.stack([net(step)[0] for step in steps])
    ours = Simulator(graph, record={last}).run(x).outputs[last]
    assert ours.sum() > 0 and torch.equal(ours, theirs)


def test_nir_refuses_what_it_cannot_carry(tmp_path):
    from spikformer_deploy.pipeline import float_graph

    model, *_ = load_fixture("cifar10")
    with pytest.raises(GraphError, match="before rewrite_ssa"):
        to_nir(float_graph(model))
    (tmp_path / "x.nir").write_bytes(b"not hdf5")
    with pytest.raises(GraphError, match="cannot read NIR"):
        read_nir(tmp_path / "x.nir")
    foreign = stem_subgraph(to_nir(fold_batchnorm(trace(model))), "patch_embed.proj_lif")
    foreign.nodes["input"].metadata = {}
    with pytest.raises(GraphError, match="not written by spikformer-deploy"):
        from_nir(foreign)


def test_nir_file_reads_as_nir_write_would_give(tmp_path):
    """Our HDF5 writer (no copies, gzip only for repeated values) against nir.write: nir.read sees the same graph."""
    import nir

    model, _ = bundled_case()
    graph = to_nir(fold_batchnorm(trace(model)))
    (ours,) = write_nir(fold_batchnorm(trace(model)), tmp_path)
    nir.write(str(tmp_path / "reference.nir"), graph)

    def same(a, b, where):
        if isinstance(a, dict):
            assert isinstance(b, dict) and a.keys() == b.keys(), where
            for key in a:
                same(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, np.ndarray):
            assert a.dtype == np.asarray(b).dtype and np.array_equal(a, b), where
        else:
            assert a == b, where

    theirs, back = nir.read(str(tmp_path / "reference.nir")), nir.read(str(ours))
    assert len(back.nodes) > 30
    same(theirs.to_dict(), back.to_dict(), "graph")
    assert ours.stat().st_size < (tmp_path / "reference.nir").stat().st_size * 1.1


def test_nir_on_the_deploy_grid(tmp_path):
    """--nir-weights grid: int8 mantissas and a Scale by the step per layer. The fine-tuned Fashion-MNIST model was
    snapped onto that grid by ``finetune`` (its float32 weights are mantissa x step, rounded to float32), so the NIR
    read back is the float graph again to float32 precision, with the same predictions; nir.read loads it, weights
    as int8."""
    import nir

    from support import BUNDLED_FMNIST, FMNIST_TEST, FMNIST_TRAIN
    from spikformer_deploy.data import load_data
    from spikformer_deploy.passes.quantize import grid_points
    from spikformer_deploy.pipeline import integer_graph

    model = load_checkpoint(BUNDLED_FMNIST)
    x, _ = load_data(FMNIST_TEST, model.config)
    x_cal, _ = load_data(FMNIST_TRAIN, model.config)
    points = {p.synapse: p for p in grid_points(integer_graph(model, x_cal))}
    graph = fold_batchnorm(trace(model))
    (path,) = write_nir(graph, tmp_path, points)
    (tmp_path / "exact").mkdir()
    (exact,) = write_nir(graph, tmp_path / "exact")
    standard = nir.read(str(path))
    q = standard.nodes["block.0.attn.q_linear.mantissas"]
    assert q.weight.dtype == np.int8 and isinstance(standard.nodes["block.0.attn.q_linear"], nir.Scale)
    assert path.stat().st_size < exact.stat().st_size / 3
    back = read_nir(path)
    synapses = [n for n in graph.nodes.values() if n.op.synapse or n.op.type == "Head"]
    assert len(synapses) == len(points) > 10
    for node in synapses:
        np.testing.assert_allclose(back.nodes[node.name].op.weight, node.op.weight, rtol=2e-7)
        np.testing.assert_allclose(back.nodes[node.name].op.bias, node.op.bias, rtol=2e-7, atol=5e-8)
    a, b = Simulator(graph, record="spikes").run(x[:100]), Simulator(back, record="spikes").run(x[:100])
    assert torch.equal(a.predictions, b.predictions)
    for name, spikes in a.outputs.items():  # a float32 rounding moves a neuron sitting on its threshold, rarely
        assert (spikes == b.outputs[name]).double().mean() >= 0.999, name
