"""Spikingformer and Spike-driven Transformer v1 float references against their ORIGINAL code's outputs
(tests/fixtures/family): logits in float64 bit for bit and in float32 to the CPU's rounding (below); every LIF's
spike counts per step and sample."""
import copy
import json

import pytest
import torch

from support import FAMILY, FAMILY_CASES, load_family_fixture

from spikformer_deploy.model import spike_counts


@pytest.fixture(params=FAMILY_CASES, scope="module")
def case(request):
    return request.param


# Spikingformer's head reads the real-valued stream: float32 sums of conv and BatchNorm outputs, whose rounding
# follows the CPU's kernels (the same torch 2.3.1 ops give these fixtures' bits on one x86 machine and differ by one
# float32 ulp of the largest logit on another, AVX2 here). Its float32 logits are compared to that rounding; float64
# and the members whose logits are a function of spikes alone (SDT) are compared bit for bit.
FP32_ROUNDING = {"spikingformer": 8 * torch.finfo(torch.float32).eps}


def test_logits_equal_the_original(case):
    model, x, logits, logits64, _ = load_family_fixture(case)
    with torch.no_grad():
        got = model(x)
        assert torch.equal(copy.deepcopy(model).double()(x.double()), logits64)
    rounding = FP32_ROUNDING.get(model.config.member)
    if rounding is None:
        assert torch.equal(got, logits)
    else:
        assert (got - logits).abs().max() <= rounding * logits.abs().max()


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
