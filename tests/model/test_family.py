"""Spikingformer, Spike-driven Transformer v1 and Meta-SpikeFormer float references against their ORIGINAL code's outputs
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


# The logits are sums whose rounding follows the CPU's kernels: the same torch 2.3.1 ops give these fixtures' bits on
# one x86 machine; on others they differ by a few ulp of the largest logit (measured: Spikingformer's float32 logits,
# which read the real-valued stream, by one float32 ulp on an AVX2 machine; on an AVX-512 Xeon its float64 logits by
# 1-2 float64 ulp and SDT cifar10's float32 head by one float32 ulp, while Meta-SpikeFormer and SDT imagenet stay bit
# for bit). Logits are compared to 8 ulp of their type; every spike is compared exactly (below), and so are the
# logits on the machine that made the fixtures.
ULPS = 8


def test_logits_equal_the_original(case):
    model, x, logits, logits64, _ = load_family_fixture(case)
    with torch.no_grad():
        got, got64 = model(x), copy.deepcopy(model).double()(x.double())
    for ours, theirs in ((got, logits), (got64, logits64)):
        assert ours.dtype == theirs.dtype
        assert (ours - theirs).abs().max() <= ULPS * torch.finfo(theirs.dtype).eps * theirs.abs().max()


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


def test_metaspikeformer_checkpoint_facts():
    """T from args.time_steps (the class itself sets 1), widths from the shapes (args.model names another
    factory), the training code's save_model layout, no distillation head; RepConv's border is the BN of zero."""
    model = load_family_fixture("metaspikeformer/imagenet")[0]
    cfg = model.config
    assert (cfg.T, cfg.embed_dims, cfg.depth, cfg.kd) == (4, (8, 16, 24, 32), 8, False)
    assert model.source["layout"] == "save_model" and "kd_head" not in model.source
    pad = model.block3[0].attn.q_conv[0].body[1]
    with torch.no_grad():
        y = pad(torch.zeros(1, 24, 6, 6))
    assert torch.allclose(y, pad.bn(torch.zeros(1, 24, 8, 8)), rtol=0, atol=1e-6)  # every pixel, border included


def test_metaspikeformer_distillation_head_loads_with_or_without(tmp_path):
    """A checkpoint with head_kd: kept and averaged in by default, dropped on request; the source says which."""
    from spikformer_deploy import load_checkpoint
    from spikformer_deploy.model.checkpoint import safe_torch_load

    d = FAMILY / "metaspikeformer/imagenet"
    ckpt = safe_torch_load(d / "checkpoint-0.pth")
    torch.manual_seed(0)
    ckpt["model"]["head_kd.weight"] = torch.randn_like(ckpt["model"]["head.weight"])
    ckpt["model"]["head_kd.bias"] = torch.randn_like(ckpt["model"]["head.bias"])
    path = tmp_path / "kd.pth"
    torch.save({"model": ckpt["model"], "args": {"time_steps": 4}}, path)
    x = torch.load(d / "input.pt")
    with_kd = load_checkpoint(path, num_heads=4, img_size=96)
    without = load_checkpoint(path, num_heads=4, img_size=96, kd=False)
    assert (with_kd.source["kd_head"], without.source["kd_head"]) == ("averaged in", "dropped")
    seen = []
    with_kd.lif.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        plain, averaged = without(x), with_kd(x)
        expected = (with_kd.head(seen[0]).mean(0) + with_kd.head_kd(seen[0]).mean(0)) / 2
    assert torch.equal(plain, torch.load(d / "logits.pt"))  # without it: the original's logits
    assert torch.equal(averaged, expected) and not torch.allclose(averaged, plain)


def test_metaspikeformer_info(capsys):
    from support import run_cli

    ckpt = str(FAMILY / "metaspikeformer/imagenet/checkpoint-0.pth")
    rc, out, err = run_cli(capsys, "info", ckpt, "--num-heads", "4", "--img-size", "96", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert (data["member"], data["model"], data["variant"]) == ("metaspikeformer", "Meta-SpikeFormer", "imagenet")
    assert data["config"]["embed_dims"] == [8, 16, 24, 32] and data["parameters"] == 199320
    rc, out, err = run_cli(capsys, "info", ckpt)
    assert rc == 2 and "num_heads is not stored" in err and len(err.strip().splitlines()) == 1
