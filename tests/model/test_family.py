"""Spikingformer and Spike-driven Transformer v1 float references against their ORIGINAL code's outputs
(tests/fixtures/family): logits bit for bit in float32 and float64, every LIF's spike counts per step and sample."""
import copy
import json

import pytest
import torch

from support import FAMILY, FAMILY_CASES, load_family_fixture

from spikformer_deploy.model import spike_counts


@pytest.fixture(params=FAMILY_CASES, scope="module")
def case(request):
    return request.param


def test_logits_equal_the_original_bit_for_bit(case):
    model, x, logits, logits64, _ = load_family_fixture(case)
    with torch.no_grad():
        assert torch.equal(model(x), logits)
        assert torch.equal(copy.deepcopy(model).double()(x.double()), logits64)


def test_every_spike_count_equals_the_original(case):
    model, x, _, _, spikes = load_family_fixture(case)
    got = spike_counts(model, x)
    assert list(got) == list(spikes), "LIF names or forward order differ from the original"
    for name, expected in spikes.items():
        assert torch.equal(got[name], expected), f"{name}: {got[name].tolist()} != {expected.tolist()}"


def test_config_is_read_from_the_checkpoint(case):
    model = load_family_fixture(case)[0]
    meta = json.loads((FAMILY / case / "meta.json").read_text())
    cfg = model.config
    assert (cfg.member, cfg.variant) == tuple(case.split("/"))
    assert cfg.num_heads == meta["num_heads"] and cfg.T == meta["T"]
    assert sum(p.numel() for p in model.parameters()) == meta["n_params"]


def test_sdsa_ties_fire():
    """talking_heads_lif sees exact h == 0.5 ties (integer token sums): '>' instead of '>=' changes its counts."""
    model, x, _, _, spikes = load_family_fixture("sdt/cifar10")
    for blk in model.block:
        blk.attn.talking_heads_lif.v_threshold = 0.5 + 1e-6
    got = spike_counts(model, x)
    assert not torch.equal(got["block.0.attn.talking_heads_lif"], spikes["block.0.attn.talking_heads_lif"])
