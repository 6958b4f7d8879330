"""Data sets read batch by batch: image folders decode a file when its batch comes, ``.npy`` files are memory-mapped,
and what a run sees is what reading everything at once gives; the inputs travel (to sweep workers, Ray tasks) as
paths and indices, not pixels."""
import json
import pickle

import numpy as np
import pytest
import torch

from support import BUNDLED_FMNIST, FMNIST_TEST, run_cli

from spikformer_deploy import load_checkpoint
from spikformer_deploy.data import Inputs, load_data, open_data
from spikformer_deploy.data.fashion_mnist import read_idx_images


@pytest.fixture(scope="module")
def fmnist():
    model = load_checkpoint(BUNDLED_FMNIST)
    pixels, labels = read_idx_images(FMNIST_TEST)
    return model.config, pixels[:60], labels[:60]


def test_image_folder_decodes_only_what_a_batch_reads(tmp_path, fmnist, monkeypatch):
    from PIL import Image

    config, pixels, labels = fmnist
    for i in range(len(pixels)):
        folder = tmp_path / str(int(labels[i]))
        folder.mkdir(exist_ok=True)
        Image.fromarray(pixels[i, 0].numpy()).save(folder / f"{i:03d}.png")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda f, *a, **k: opened.append(f) or real_open(f, *a, **k))
    inputs, y = open_data(tmp_path, config)
    assert len(inputs) == 60 and inputs.shape == (60, 1, 16, 16) and len(opened) == 1  # the first, as a check
    batch = inputs[10:14]
    assert batch.shape == (4, 1, 16, 16) and len(opened) == 5
    monkeypatch.setattr(Image, "open", real_open)
    everything, labels_again = load_data(tmp_path, config)
    assert torch.equal(batch, everything[10:14]) and torch.equal(y, labels_again)
    held = inputs.subset(np.arange(60) % 5 == 0)
    assert torch.equal(held[:], everything[::5])


def test_npy_is_memory_mapped_and_travels_as_a_path(tmp_path, fmnist):
    config, pixels, _ = fmnist
    big = np.concatenate([pixels.numpy()] * 50)  # 3,000 images of 28x28 at 8 bits
    np.save(tmp_path / "x.npy", big)
    inputs, y = open_data(tmp_path / "x.npy", config)
    assert y is None and len(inputs) == 3000
    shipped = pickle.dumps(inputs.subset(slice(100, 3000)))
    assert len(shipped) < 16 * 2900  # a path and an index per input, not its 784 pixels
    again = pickle.loads(shipped)
    in_memory = Inputs.of(load_data(tmp_path / "x.npy", config)[0])
    assert torch.equal(again[5:9], in_memory[105:109])


def test_simulate_streams_the_same_totals_as_in_memory(tmp_path, fmnist, capsys):
    """--data x.npy (memory-mapped) and the same images in an .npz (read whole): the same run."""
    config, pixels, labels = fmnist
    np.save(tmp_path / "x.npy", pixels.numpy())
    np.savez(tmp_path / "d.npz", x=pixels.numpy())
    runs = []
    for data in ("x.npy", "d.npz"):
        rc, out, err = run_cli(capsys, "simulate", str(BUNDLED_FMNIST), "--data", str(tmp_path / data), "--batch",
                               "16", "--json")
        assert rc == 0, err
        runs.append({k: v for k, v in json.loads(out).items() if k != "data"})
    assert runs[0] == runs[1] and runs[0]["samples"] == 48
