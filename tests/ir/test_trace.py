"""The traced deploy graph mirrors the original model: names, shapes, JSON view."""
import json

import numpy as np
import pytest

from support import fixture_dir, load_fixture

from spikformer_deploy.frontends import trace
from spikformer_deploy.ir import Graph, GraphError
from spikformer_deploy.ir.ops import LIF, Add, OrPool, SpikingAttention


def test_graph_nodes_match_original_lif_layers(fixture_variant):
    model, _, _, spikes = load_fixture(fixture_variant)
    meta = json.loads((fixture_dir(fixture_variant) / "meta.json").read_text())
    g = trace(model)
    lif_names = [n.name for n in g.of_type(LIF)]
    assert lif_names == list(spikes)
    for name, layer in meta["lif_layers"].items():
        # original layouts: [T, B, C, H, W], cifar10 tokens [T, B, N, C], others [T, B, C, N]
        assert np.prod(g.nodes[name].shape) == layer["neurons_per_sample_per_step"]
        assert g.nodes[name].op.v_threshold == layer["v_threshold"]
    cfg = model.config
    assert len(g.of_type(OrPool)) == len(cfg.pooled_stages)
    assert len(g.of_type(Add)) == 1 + 2 * cfg.depth
    (ssa,) = g.of_type(SpikingAttention)
    assert (ssa.op.num_heads, ssa.op.head_dim, ssa.op.scale) == (cfg.num_heads, cfg.head_dim, cfg.attention_scale)
    assert g.output.shape == (cfg.num_classes,)


def test_json_and_text_views():
    model, *_ = load_fixture("cifar10")
    g = trace(model)
    data = json.loads(g.to_json())
    first_conv = next(n for n in data["nodes"] if n["name"] == "patch_embed.proj_conv")
    assert first_conv["arrays"]["weight"]["shape"] == [12, 3, 3, 3]
    text = str(g)
    assert "block.0.attn.ssa" in text and "SpikingAttention" in text


def test_graph_rejects_bad_wiring():
    model, *_ = load_fixture("cifar10")
    g = trace(model)
    with pytest.raises(GraphError, match="undefined"):
        g.add("x", LIF(v_threshold=1.0), ["nope"])
    broken = g.copy()
    broken.nodes["head"].inputs = ("block.0.attn.q_lif",)  # 96 channels still, but defined: shape is fine
    broken.nodes["patch_embed.proj_lif"].shape = (1, 2, 3)
    with pytest.raises(GraphError, match="patch_embed.proj_lif"):
        broken.validate()
    assert isinstance(g, Graph)
