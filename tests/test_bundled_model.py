"""The bundled default model: small, loads, reaches its stated accuracy; training is deterministic."""
import json

import torch

from support import BUNDLED

from spikformer_deploy import load_checkpoint
from spikformer_deploy.data import digits_split
from spikformer_deploy.model import safe_torch_load
from spikformer_deploy.train import RECIPES, TrainingRecipe, accuracy, train


def test_bundled_model_is_small_and_documented():
    assert BUNDLED.stat().st_size < 5 * 2**20
    card = BUNDLED.with_suffix(".md").read_text()
    meta = safe_torch_load(BUNDLED)["meta"]
    assert f"test {meta['test_accuracy']:.2%}" in card and "seed 0" in card


def test_bundled_model_test_accuracy():
    model = load_checkpoint(BUNDLED)
    cfg = model.config
    assert (cfg.variant, cfg.in_channels, cfg.dim) == ("cifar10", 1, 64)
    _, _, x_test, y_test = digits_split(cfg.img_size, seed=0)
    acc = accuracy(model, x_test, y_test)
    assert acc >= 0.95
    assert acc == safe_torch_load(BUNDLED)["meta"]["test_accuracy"]


def test_digits_split_is_stratified_and_disjoint():
    x_tr, y_tr, x_te, y_te = digits_split(16, seed=0)
    assert x_tr.shape == (1437, 1, 16, 16) and x_te.shape == (360, 1, 16, 16)
    assert 0.0 <= float(x_tr.min()) and float(x_tr.max()) <= 1.0
    assert torch.bincount(y_te).min() >= 35
    train_rows = {tuple(r) for r in x_tr.flatten(1).numpy().round(6).tolist()}
    assert sum(tuple(r) in train_rows for r in x_te.flatten(1).numpy().round(6).tolist()) <= 2  # sklearn has dups


def test_training_is_deterministic():
    recipe = TrainingRecipe(epochs=1, depth=1, dim=16, num_heads=2, max_shift=1, hflip=True)
    a, report_a = train(recipe)
    b, report_b = train(recipe)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert report_a["test_accuracy"] == report_b["test_accuracy"]
    json.dumps(report_a)  # the report goes into the checkpoint and model card


def test_bundled_digits_model_follows_its_recipe():
    """The checkpoint records the settings of RECIPES['digits']: `train --dataset digits` remakes it."""
    assert safe_torch_load(BUNDLED)["meta"]["settings"].items() <= RECIPES["digits"].settings().items()
