"""Checkpoint layouts, config inference, overrides and every kind of bad checkpoint."""
import argparse
import os
import pickle

import pytest
import torch

from support import BUNDLED, FIXTURE_CASES, fixture_dir, load_fixture

from spikformer_deploy import CheckpointError, ConfigError, load_checkpoint, save_checkpoint
from spikformer_deploy.model import Spikformer, SpikformerConfig

SMALL = SpikformerConfig("cifar10", dim=32, depth=2, num_heads=2, mlp_ratio=4, num_classes=5, in_channels=1,
                         img_size=16, T=2)


def same_outputs(a, b, x):
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def test_inferred_configs_of_fixtures(fixture_variant):
    import json

    model, *_ = load_fixture(fixture_variant)
    meta = json.loads((fixture_dir(fixture_variant) / "meta.json").read_text())["config"]
    cfg = model.config
    assert (cfg.variant, cfg.dim, cfg.depth, cfg.num_heads, cfg.mlp_ratio, cfg.num_classes, cfg.T) == (
        fixture_variant, meta["dim"], meta["layers"], meta["num_heads"], meta["mlp"], meta["classes"], meta["T_effective"])
    assert not model.training


def test_missing_num_heads_names_the_option():
    d = fixture_dir("imagenet")
    with pytest.raises(ConfigError, match="num_heads.*--num-heads"):
        load_checkpoint(d / FIXTURE_CASES["imagenet"][0])


def test_num_heads_contradicting_args_is_refused():
    with pytest.raises(ConfigError, match="contradicts"):
        load_checkpoint(fixture_dir("cifar10") / "model_best.pth.tar", num_heads=4)


def test_bare_state_dict_and_module_prefix(tmp_path):
    model, x, *_ = load_fixture("cifar10dvs")
    sd = model.state_dict()
    torch.save(sd, tmp_path / "bare.pth")
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "ddp.pth")
    for name in ("bare.pth", "ddp.pth"):
        loaded = load_checkpoint(tmp_path / name, num_heads=4, T=4)
        assert loaded.config == model.config
        assert same_outputs(model, loaded, x)


def test_unused_original_entries_are_optional(tmp_path):
    model, x, *_ = load_fixture("cifar10dvs")
    sd = {k: v for k, v in model.state_dict().items() if "norm" not in k and k != "pos_embed"}
    torch.save(sd, tmp_path / "trimmed.pth")
    assert same_outputs(model, load_checkpoint(tmp_path / "trimmed.pth", num_heads=4, T=4), x)


def test_own_format_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Spikformer(SMALL).eval()
    save_checkpoint(model, tmp_path / "m.pth", meta={"note": "x"})
    loaded = load_checkpoint(tmp_path / "m.pth")
    assert loaded.config == SMALL
    assert same_outputs(model, loaded, torch.rand(SMALL.input_shape(3)))
    assert load_checkpoint(tmp_path / "m.pth", T=3).config.T == 3


def test_timm_layout_with_namespace_args(tmp_path):
    torch.manual_seed(0)
    model = Spikformer(SMALL).eval()
    args = argparse.Namespace(num_heads=2, time_step=2, img_size=16, model="spikformer")
    torch.save({"epoch": 3, "arch": "spikformer", "state_dict": model.state_dict(), "args": args,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}, "version": 2}, tmp_path / "t.pth.tar")
    assert load_checkpoint(tmp_path / "t.pth.tar").config == SMALL


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated", "random", "pickle_code",
                                  "torch_code", "other_arch", "nan", "inf", "missing_key", "misshaped", "not_dict"])
def test_bad_checkpoints_raise_one_line_errors(tmp_path, case):
    marker = tmp_path / "code_ran"
    good = fixture_dir("cifar10") / "model_best.pth.tar"
    sd = load_checkpoint(good).state_dict()
    path = tmp_path / "bad.pth"
    if case == "missing":
        path = tmp_path / "nope.pth"
    elif case == "directory":
        path = tmp_path
    elif case == "empty":
        _write(path, b"")
    elif case == "truncated":
        _write(path, good.read_bytes()[:100_000])
    elif case == "random":
        _write(path, os.urandom(4096))
    elif case == "pickle_code":
        _write(path, pickle.dumps({"state_dict": _RunsCode(str(marker))}))
    elif case == "torch_code":
        torch.save({"state_dict": sd, "args": _RunsCode(str(marker))}, path)
    elif case == "other_arch":
        torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(), path)
    elif case in ("nan", "inf"):
        sd["block.0.attn.k_linear.weight"][0, 0] = float(case)
        torch.save({"state_dict": sd, "args": argparse.Namespace(num_heads=6, time_step=4, img_size=32)}, path)
    elif case == "missing_key":
        del sd["block.0.mlp.fc2_bn.running_var"]
        torch.save(sd, path)
    elif case == "misshaped":
        sd["block.0.attn.v_linear.bias"] = torch.zeros(5)
        torch.save(sd, path)
    elif case == "not_dict":
        torch.save([torch.zeros(3)], path)
    with pytest.raises((CheckpointError, ConfigError)) as info:
        load_checkpoint(path, num_heads=6, T=4, img_size=32)
    message = str(info.value)
    assert "\n" not in message and message
    assert not marker.exists(), "loading ran code from the file"
    expected = {"missing": "does not exist", "directory": "directory", "empty": "empty", "truncated": "cannot read",
                "random": "cannot read", "pickle_code": "refusing", "torch_code": "refusing",
                "other_arch": "not a Spikformer", "nan": "k_linear.weight has 1 NaN", "inf": "NaN/Inf",
                "missing_key": "missing: block.0.mlp.fc2_bn.running_var",
                "misshaped": "block.0.attn.v_linear.bias [5]", "not_dict": "not a checkpoint dict"}[case]
    assert expected in message


def test_evil_pickle_is_rejected_even_by_name(tmp_path):
    """The allow-list blocks the global lookup itself, before any call could happen."""
    marker = tmp_path / "owned"
    payload = (b"cos\nsystem\n(V touch " + str(marker).encode() + b"\ntR.")
    path = _write(tmp_path / "evil.pth", payload)
    with pytest.raises(CheckpointError, match="os.system is not allowed"):
        load_checkpoint(path)
    assert not marker.exists()


def crafted_checkpoint(path, declared_numel: int, rename: str | None = None):
    """The bundled model saved by torch, with its first storage's record declaring ``declared_numel`` elements
    (its archive entry keeps the real size), or renamed to ``rename`` (declared, but not in the archive): torch 2.3
    then reads past the entry (1 GiB declared: a segfault in the finite-value check) or allocates what is declared
    (4 TiB: a traceback)."""
    import types

    class LyingPickler(pickle._Pickler):  # the pure-Python pickler: torch assigns its persistent_id hook
        @property
        def persistent_id(self):
            return self._hook

        @persistent_id.setter
        def persistent_id(self, hook):
            def lie(obj):
                record = hook(obj)
                if record is not None and record[2] == "0":
                    record = (*record[:2], rename or "0", record[3], declared_numel)
                return record
            self._hook = lie

    module = types.ModuleType("lying_pickle")
    module.Pickler = LyingPickler
    torch.save({"state_dict": load_checkpoint(BUNDLED).state_dict()}, path, pickle_module=module)
    return path


@pytest.mark.parametrize("numel,rename,needle", [
    (2**28, None, "storage '0' declares 1,073,741,824 bytes, the archive holds"),  # 1 GiB: read past the data
    (2**40, None, "storage '0' declares 4,398,046,511,104 bytes"),  # 4 TiB: an allocation attempt
    (64, "9999", "storage '9999' is declared but missing"),
])
def test_storages_larger_than_the_archive_are_refused_before_any_read(tmp_path, numel, rename, needle):
    path = crafted_checkpoint(tmp_path / "crafted.pth", numel, rename)
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(path)


def test_the_lying_pickler_itself_writes_good_checkpoints(tmp_path):
    """The crafting above changes only the record: with the true size the same file loads."""
    true_numel = load_checkpoint(BUNDLED).state_dict()["patch_embed.proj_conv.weight"].numel()
    model = load_checkpoint(crafted_checkpoint(tmp_path / "honest.pth", true_numel), num_heads=2, T=4, img_size=16)
    assert model.config.dim == 64
