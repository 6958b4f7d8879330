"""The op is the unit of extension: every backend's and analysis' op table covers every op type (or says why not),
ops are immutable, dialects are checked, and the IR stands on its own."""
import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from support import BUNDLED, REPO, load_fixture

from spikformer_deploy import load_checkpoint
from spikformer_deploy.analysis.conventions import NEUROBENCH, OURS, PAPER, SYOPS
from spikformer_deploy.analysis.energy import LOIHI_COST, MEMORY_AWARE_COST
from spikformer_deploy.analysis.feasibility import MAPPERS
from spikformer_deploy.analysis.layers import ROWS
from spikformer_deploy.backends.lava.network import LOWERING, lava_shape
from spikformer_deploy.backends.netx.stem import LAYERS
from spikformer_deploy.backends.nir.convert import FROM_NIR, FROM_NIR_UNSUPPORTED, TO_NIR
from spikformer_deploy.backends.sim import COUNTS, KERNELS, Simulator
from spikformer_deploy.data import digits_split
from spikformer_deploy.errors import GraphError, UnsupportedOpError
from spikformer_deploy.frontends import trace
from spikformer_deploy.ir import Graph, OpTable
from spikformer_deploy.ir.ops import OP_TYPES, Add, Conv2d, Dense, Flatten, Head, Input, LoihiLIF, OrPool
from spikformer_deploy.ir.serialize import graph_to_json, load_graph, save_graph
from spikformer_deploy.pipeline import float_graph, integer_graph

TABLES = [KERNELS, COUNTS, LOWERING, TO_NIR, LAYERS, ROWS, OURS, PAPER, NEUROBENCH, SYOPS, MEMORY_AWARE_COST,
          LOIHI_COST, MAPPERS]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.consumer)
def test_every_table_covers_every_op(table):
    missing = set(OP_TYPES.values()) - table.covered()
    assert not missing, f"{table.consumer} has no entry and no 'unsupported' reason for " \
                        f"{sorted(t.__name__ for t in missing)}"


def test_nir_reader_covers_what_the_writer_writes():
    assert set(FROM_NIR) | set(FROM_NIR_UNSUPPORTED) == set(OP_TYPES.values())
    assert set(FROM_NIR) == set(TO_NIR.entries)


def test_an_unhandled_op_is_one_named_error():
    graph = integer_graph(load_checkpoint(BUNDLED), digits_split(16)[0][:16])
    table = OpTable("a backend", {Input: print}, unsupported={Conv2d: "no convolutions here"})
    with pytest.raises(UnsupportedOpError, match="a backend cannot handle Conv2d node patch_embed.proj_conv: "
                                                 "no convolutions here"):
        table(graph.nodes["patch_embed.proj_conv"])
    with pytest.raises(UnsupportedOpError, match="a backend cannot handle Add node .*no entry"):
        table(graph.nodes["patch_embed.residual"])
    with pytest.raises(ValueError, match="both handled and unsupported"):
        OpTable("broken", {Input: print}, unsupported={Input: "?"})


def test_ops_are_frozen_and_passes_leave_their_input_alone():
    model, x, *_ = load_fixture("cifar10")
    traced = trace(model)
    before = graph_to_json(traced)
    weights = {n.name: n.op.weight.copy() for n in traced.having("synapse")}
    integer_graph(model, x)
    float_graph(model)
    assert graph_to_json(traced) == before
    op = traced.nodes["patch_embed.proj_conv"].op
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.stride = 2
    with pytest.raises(ValueError, match="read-only"):
        op.weight[0, 0, 0, 0] = 1.0
    assert all(np.array_equal(weights[n.name], n.op.weight) for n in traced.having("synapse"))


def test_dialects_are_checked():
    model, x, *_ = load_fixture("cifar10")
    f, i = float_graph(model), integer_graph(model, x)
    assert (f.dialect, i.dialect) == ("float", "integer")
    mixed = i.copy(dialect="float")
    with pytest.raises(GraphError, match="int8 in the float dialect"):
        mixed.validate()
    wrong = f.copy(dialect="integer")
    with pytest.raises(GraphError, match="Input has no bit width in the integer dialect"):
        wrong.validate()
    wrong.nodes["input"].op = i.input.op
    with pytest.raises(GraphError, match="float64 in the integer dialect"):
        wrong.validate()
    with pytest.raises(GraphError, match="integer graph"):
        from spikformer_deploy.backends.lava import LavaNetwork
        LavaNetwork(f)
    with pytest.raises(GraphError, match="float graph"):
        from spikformer_deploy.backends.nir import to_nir
        to_nir(i)


@pytest.mark.parametrize("dialect", ["float", "integer"])
def test_save_load_round_trip(tmp_path, dialect):
    model, x, *_ = load_fixture("imagenet")
    graph = float_graph(model) if dialect == "float" else integer_graph(model, x)
    save_graph(graph, tmp_path)
    back = load_graph(tmp_path)
    assert back.dialect == dialect and back.meta == graph.meta and back.steps == graph.steps
    assert graph_to_json(back) == graph_to_json(graph)
    for name, node in graph.nodes.items():
        for key, array in node.op.arrays().items():
            other = back.nodes[name].op.arrays()[key]
            assert array.dtype == other.dtype and np.array_equal(array, other), f"{name}/{key}"
    a, b = Simulator(graph).run(x), Simulator(back).run(x)
    assert torch.equal(a.logits, b.logits)
    assert all(torch.equal(a.spike_counts[k], b.spike_counts[k]) for k in a.spike_counts)


def test_token_grid_is_kept_on_non_square_maps():
    g = Graph("integer")
    g.add("input", Input(shape=(2, 2, 3), kind="events", steps=2, bits=8))
    g.add("conv", Conv2d(weight=np.ones((4, 2, 3, 3), dtype=np.int8)), ["input"])
    g.add("lif", LoihiLIF(vth=1, bias_mant=np.zeros(4, dtype=np.int16)), ["conv"])
    g.add("pool", OrPool(kernel=1, stride=1, padding=0), ["lif"])
    g.add("sum", Add(), ["lif", "pool"])
    g.add("tokens", Flatten(), ["sum"])
    g.add("dense", Dense(weight=np.ones((3, 4), dtype=np.int8)), ["tokens"])
    g.add("lif2", LoihiLIF(vth=1, bias_mant=np.zeros(3, dtype=np.int16)), ["dense"])
    g.add("head", Head(weight=np.ones((2, 3), dtype=np.int8), bias=np.zeros(2, dtype=np.int64), scale=1.0),
          ["lif2"])
    g.validate()
    assert g.nodes["lif2"].shape == (3, 6) and g.grid("lif2") == (3, 2, 3)
    assert lava_shape(g, "lif2") == (3, 2, 3) and lava_shape(g, "sum") == (3, 2, 4)
    # the one delay rule: input 1, synapse +1, OR pool +1, the sum waits for its latest input and relays (+1)
    assert g.pipeline_depths() == {"input": 1, "conv": 2, "lif": 2, "pool": 3, "sum": 4, "tokens": 4, "dense": 5,
                                   "lif2": 5, "head": 5}
    assert g.value_bounds()["sum"] == 2 and g.value_bounds()["tokens"] == 2
    assert g.output.shape == (2,)  # the class count


def _imports(path: Path) -> set[str]:
    """Modules a file imports, resolved to ``spikformer_deploy.<package>`` where relative."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("layer,forbidden", [
    ("ir", ("model", "frontends", "passes", "backends", "analysis", "export", "cli", "pipeline")),
    ("passes", ("model", "frontends", "backends", "analysis", "export", "cli", "pipeline")),
    ("backends", ("analysis", "export", "cli", "pipeline", "frontends")),
    ("analysis", ("backends", "export", "cli", "pipeline", "frontends")),
])
def test_layers_import_only_downwards(layer, forbidden):
    for path in sorted((REPO / "spikformer_deploy" / layer).rglob("*.py")):
        bad = [m for m in _imports(path) if any(m.startswith(f"spikformer_deploy.{f}") for f in forbidden)]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"
