"""Meta-SpikeFormer's re-parameterisation folds are exact: each collapsed chain computes its original's function
(float64, random inputs, borders included), and the folded float reference still reproduces the original code's
fixture (every LIF's spikes, fp32 and fp64 logits)."""
import copy

import pytest
import torch

from support import load_family_fixture

from spikformer_deploy.model import spike_counts
from spikformer_deploy.model.metaspikeformer import frames
from spikformer_deploy.model.reparam import (fold_all, fold_heads, fold_repconv, fold_sepconv, repconv_as_conv,
                                             sepconv_tail_as_conv)

CASE = "metaspikeformer/imagenet"


@pytest.fixture(scope="module")
def fixture():
    return load_family_fixture(CASE)


def test_each_collapsed_chain_is_its_original(fixture):
    model = copy.deepcopy(fixture[0]).double()
    x = torch.randn(2, 24, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rep, bn = model.block3[0].attn.q_conv
    with torch.no_grad():
        assert torch.allclose(repconv_as_conv(rep, bn)(x), bn(rep(x)), rtol=0, atol=1e-12)
        sep = model.ConvBlock1_2[0].Conv
        y = torch.randn(1, 2, 16, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(frames(sepconv_tail_as_conv(sep), y), frames(sep.pwconv2, frames(sep.dwconv, y)),
                              rtol=0, atol=1e-12)


@pytest.mark.parametrize("fold", [fold_repconv, fold_sepconv, lambda m: fold_all(m)[0]],
                         ids=["repconv", "sepconv", "all"])
def test_folded_model_reproduces_the_original(fixture, fold):
    model, x, logits, logits64, spikes = fixture
    before = copy.deepcopy(model.state_dict())
    folded = fold(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input is left alone
    got = spike_counts(folded, x)
    assert list(got) == list(spikes)
    assert all(torch.equal(got[k], v) for k, v in spikes.items())
    with torch.no_grad():
        assert torch.equal(folded(x), logits)
        assert torch.equal(fold(copy.deepcopy(model).double())(x.double()), logits64)


def test_fold_all_records_what_it_replaced(fixture):
    folded, records = fold_all(fixture[0])
    assert [r["fold"] for r in records] == ["fold_repconv", "fold_sepconv", "fold_heads"]
    # RepConv's 1x1 + depthwise + 1x1 (+ 3 BNs) become one dense 3x3 per projection: more weights, fewer hops
    assert records[0]["parameters_after"] > records[0]["parameters_before"]
    assert not any("dwconv" in n for n, m in folded.named_modules() if isinstance(m, torch.nn.Conv2d))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for n, m in folded.named_modules() if ".attn." in n)


def test_the_distillation_head_folds_into_one(fixture, tmp_path):
    from spikformer_deploy import load_checkpoint
    from spikformer_deploy.model.checkpoint import safe_torch_load

    model, x = fixture[0], fixture[1]
    ckpt = safe_torch_load(model.source["path"])
    torch.manual_seed(0)
    sd = ckpt["model"]
    sd["head_kd.weight"], sd["head_kd.bias"] = torch.randn_like(sd["head.weight"]), torch.randn_like(sd["head.bias"])
    path = tmp_path / "kd.pth"
    torch.save({"model": sd, "args": {"time_steps": 4}}, path)
    kd = load_checkpoint(path, num_heads=4, img_size=96).double()
    one = fold_heads(kd)
    assert not hasattr(one, "head_kd") and not one.config.kd and kd.config.kd
    with torch.no_grad():
        assert torch.allclose(one(x.double()), kd(x.double()), rtol=0, atol=1e-12)
