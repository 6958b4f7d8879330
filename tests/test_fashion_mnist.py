"""Fashion-MNIST: the IDX reader, one result whichever way the images are stored, quantization-aware fine-tuning,
and the bundled 2-block model."""
import gzip
import json

import numpy as np
import pytest
import torch

from support import BUNDLED, BUNDLED_FMNIST, FMNIST, FMNIST_TEST, FMNIST_TRAIN, run_cli

from spikformer_deploy import load_checkpoint
from spikformer_deploy.data import fashion_mnist, load_data
from spikformer_deploy.data.fashion_mnist import read_idx


def _raw_images(n=None):
    """The subset's 28x28 uint8 images and labels, read without the project's reader."""
    x = np.frombuffer(gzip.open(FMNIST_TEST).read(), np.uint8, offset=16).reshape(-1, 28, 28)
    y = np.frombuffer(gzip.open(FMNIST / "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    return x[:n].copy(), y[:n].astype(np.int64)


def test_subset_reads_as_the_standard_split():
    x, y = fashion_mnist("test", 16, root=FMNIST)
    raw, labels = _raw_images()
    assert x.shape == (500, 1, 16, 16) and torch.equal(y, torch.from_numpy(labels))
    assert torch.equal(torch.round(x * 255), torch.round(x * 255).clamp(0, 255))  # on the 8-bit grid
    assert torch.equal(x * 255, torch.round(x * 255))
    # the 28x28 pixels survive when no resize is asked for
    x28, _ = fashion_mnist("test", 28, root=FMNIST)
    assert torch.equal(x28[:, 0] * 255, torch.from_numpy(raw).float())


def test_image_folder_npz_and_idx_give_the_same_bits(tmp_path, capsys):
    """Sub-folders 0..9 of PNGs, a uint8 .npz at 28x28 and the IDX file: the same inputs, the same simulation."""
    from PIL import Image

    raw, labels = _raw_images(60)
    for i, (img, label) in enumerate(zip(raw, labels)):
        folder = tmp_path / "images" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    np.savez(tmp_path / "raw.npz", x=raw, y=labels)
    config = load_checkpoint(BUNDLED).config  # any 1-channel 16x16 model
    from_folder = load_data(tmp_path / "images", config)
    from_npz = load_data(tmp_path / "raw.npz", config)
    x_idx, y_idx = load_data(FMNIST_TEST, config)
    order = np.argsort(labels, kind="stable")  # the folder lists class 0 first
    assert torch.equal(from_folder[0], from_npz[0][order]) and torch.equal(from_folder[1], from_npz[1][order])
    assert torch.equal(from_npz[0], x_idx[:60]) and torch.equal(from_npz[1], y_idx[:60])
    outputs = []
    for data in (tmp_path / "images", tmp_path / "raw.npz"):
        rc, out, err = run_cli(capsys, "simulate", "--data", str(data), "--calibration-data", str(FMNIST_TRAIN),
                               "--json")
        assert rc == 0, err
        outputs.append(json.loads(out))
    a, b = outputs
    for key in ("float_accuracy", "int_accuracy", "agreement", "totals_per_inference", "spike_agreement"):
        assert a[key] == b[key], key


def test_numbered_folders_are_their_class_numbers(tmp_path):
    from PIL import Image

    raw, _ = _raw_images(2)
    for label, img in zip((7, 3), raw):
        (tmp_path / str(label)).mkdir()
        Image.fromarray(img).save(tmp_path / str(label) / "a.png")
    x, y = load_data(tmp_path, load_checkpoint(BUNDLED).config)
    assert y.tolist() == [3, 7] and torch.equal(x[0], load_data(FMNIST_TEST, load_checkpoint(BUNDLED).config)[0][1])


@pytest.mark.parametrize("case,needle", [
    ("magic", "is not an IDX file of 3-D unsigned bytes"),
    ("short", "its header declares [5, 28, 28]"),
    ("gzip", "cannot read"),
    ("labels", "its header declares [9]"),
])
def test_bad_idx_is_one_line(tmp_path, capsys, case, needle):
    path = tmp_path / "t10k-images-idx3-ubyte"
    images = bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    if case == "magic":
        path.write_bytes(bytes([0, 0, 9, 3]) + images[4:] + bytes(5 * 784))
    elif case == "short":
        path.write_bytes(images + bytes(100))
    elif case == "gzip":
        path = path.with_suffix(".gz")
        path.write_bytes(b"\x1f\x8b not really gzip")
    elif case == "labels":
        path.write_bytes(images + bytes(5 * 784))
        (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (9).to_bytes(4, "big") + bytes(5))
    rc, _, err = run_cli(capsys, "simulate", "--data", str(path))
    assert rc == 2 and err.count("\n") == 1 and needle in err, err


def test_idx_reader_matches_numpy():
    assert np.array_equal(read_idx(FMNIST_TRAIN, 3)[:3].reshape(3, -1),
                          np.frombuffer(gzip.open(FMNIST_TRAIN).read(), np.uint8, offset=16)[:3 * 784].reshape(3, -1))


def test_finetune_makes_the_integer_model_take_the_float_decisions(tmp_path, capsys):
    """The digits model fine-tuned on Fashion-MNIST images (8-bit inputs): before, post-training quantization keeps
    well under 99 % of the float model's spike decisions on these images; after, the exported integer model takes
    them all but for float rounding, and re-exporting finds the very grid it was snapped on."""
    out = tmp_path / "tuned.pth"
    rc, msg, err = run_cli(capsys, "finetune", "--data", str(FMNIST_TRAIN), "--epochs", "1", "--batch", "64",
                           "-o", str(out))
    assert rc == 0, err
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["finetune"]["weights_off_grid_after_reexport"] == 0
    assert meta["finetune"]["max_step_change_after_reexport"] < 1e-6
    assert "Quantization-aware fine-tuning" in out.with_suffix(".md").read_text()
    agreement = {}
    for name, ckpt in (("before", BUNDLED), ("after", out)):
        rc, text, err = run_cli(capsys, "simulate", str(ckpt), "--data", str(FMNIST_TEST), "--calibration-data",
                                str(FMNIST_TRAIN), "--json")
        assert rc == 0, err
        agreement[name] = json.loads(text)
    assert min(agreement["before"]["spike_agreement"].values()) < 0.99
    assert agreement["after"]["agreement"] >= 0.99
    assert min(agreement["after"]["spike_agreement"].values()) >= 0.999


def test_finetune_bad_input_is_one_line(tmp_path, capsys):
    np.savez(tmp_path / "unlabelled.npz", x=np.zeros((4, 1, 16, 16), np.float32))
    rc, _, err = run_cli(capsys, "finetune", "--data", str(tmp_path / "unlabelled.npz"), "-o", str(tmp_path / "o.pth"))
    assert rc == 2 and "has no labels" in err and err.count("\n") == 1
    rc, _, err = run_cli(capsys, "finetune", "-o", str(tmp_path))
    assert rc == 2 and "is a directory" in err
    assert not (tmp_path / "o.pth").exists()


def test_bundled_fashion_float_model_follows_its_recipe():
    """The float model is what `train --dataset fashion-mnist` writes (RECIPES), and the fine-tuned one names it."""
    from spikformer_deploy.train import RECIPES

    float_meta = torch.load(BUNDLED_FMNIST.with_name("spikformer_fmnist_float.pth"), weights_only=True)["meta"]
    assert float_meta["settings"] == RECIPES["fashion-mnist"].settings()
    assert float_meta["test_accuracy"] >= 0.90
    meta = torch.load(BUNDLED_FMNIST, weights_only=True)["meta"]
    assert meta["finetune"]["source"] == "models/spikformer_fmnist_float.pth"
    assert meta["test_accuracy_before_finetune"] == float_meta["test_accuracy"]


def test_bundled_fashion_model_is_small_documented_and_deep():
    assert BUNDLED_FMNIST.stat().st_size < 5 * 2**20
    ckpt = torch.load(BUNDLED_FMNIST, weights_only=True)
    cfg, meta = ckpt["config"], ckpt["meta"]
    assert cfg["depth"] >= 2 and cfg["dim"] >= 128 and cfg["num_heads"] >= 4 and cfg["T"] == 4
    assert meta["test_accuracy"] >= 0.90 and meta["split"]["test"] == 10000
    card = BUNDLED_FMNIST.with_suffix(".md").read_text()
    assert f"test {meta['test_accuracy']:.2%}" in card and "spikformer-deploy train --dataset fashion-mnist" in card
    assert "Quantization-aware fine-tuning" in card


def test_bundled_fashion_model_keeps_its_decisions_in_8_bits(capsys):
    """On the 500-image subset, calibrated on the 256 training images (as on the full split): the integer model
    within 0.3 pt of the float one, >= 99 % of the predictions alike, every layer's spikes >= 99.9 % alike."""
    rc, out, err = run_cli(capsys, "simulate", str(BUNDLED_FMNIST), "--data", str(FMNIST_TEST), "--calibration-data",
                           str(FMNIST_TRAIN), "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["samples"] == 500 and data["calibration_samples"] == 256
    assert data["float_accuracy"] >= 0.85
    assert abs(data["int_accuracy"] - data["float_accuracy"]) <= 0.003
    assert data["agreement"] >= 0.99
    assert min(data["spike_agreement"].values()) >= 0.999
