"""Quantization-aware fine-tuning: train the float model on the deploy grid, then snap it onto that grid.

Why: a Spikformer is chaotic in its thresholds. On the Fashion-MNIST model, multiplying every weight by
(1 + 1e-3 noise) already changes 3 % of the predictions, so no post-training rounding of 8-bit weights (per tensor
or per channel alike: both measured at 96.2 % agreement) can keep 99 % of the float model's decisions. What can is
a float model whose weights *are* the integer model's: then both compute the same numbers, and the membrane halvings,
exact in the integer model's fractional bits (passes/quantize.py), agree too.

How: each epoch, the real quantizer (calibrated on ``calibration`` training inputs) fixes every synapse's step; the
forward pass then uses the folded weights rounded onto that step and clipped to the weight range (straight-through
gradient), with BatchNorm frozen. At the end the weights, the folded biases and the head are written back on the grid
the quantizer finds for the fine-tuned model, so that exporting it reproduces exactly the integers it was trained
with (tested).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .errors import ConfigError
from .model import Spikformer
from .passes.quantize import GridPoint, grid_points
from .pipeline import integer_graph_from


@dataclass(frozen=True)
class FinetuneRecipe:
    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 128
    weight_bits: int = 8
    calibration: int = 256  # training inputs the quantizer calibrates on
    seed: int = 0
    threads: int = 2

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or self.calibration < 1 or not self.lr > 0:
            raise ConfigError("fine-tuning needs epochs >= 0, batch >= 1, calibration >= 1 and lr > 0")


def deploy_grid(model: Spikformer, x_cal: torch.Tensor, weight_bits: int) -> list[GridPoint]:
    """The grid the quantizer puts ``model`` on, calibrated on ``x_cal``."""
    return grid_points(integer_graph_from(model, x_cal, weight_bits=weight_bits)[1])


def batchnorm_scale(bn: nn.Module) -> torch.Tensor:
    return (bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps))


def _per_channel(v: torch.Tensor, ndim: int) -> torch.Tensor:
    return v.reshape(-1, *([1] * (ndim - 1)))


class OnGrid(nn.Module):
    """Parametrization: a synapse weight as the integer model will hold it (folded with its BatchNorm's scale,
    rounded onto ``step``, clipped to the weight range, unfolded), with the gradient passed straight through."""

    def __init__(self, scale: torch.Tensor, step: float, levels: tuple[int, int]):
        super().__init__()
        self.register_buffer("scale", scale.float())
        self.step, self.levels = step, levels

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        s = _per_channel(self.scale, w.ndim)
        q = torch.clamp(torch.round(w * s / self.step), *self.levels) * self.step / s
        return w + (torch.where(s != 0, q, w) - w).detach()


def snap_to_grid(model: Spikformer, grid: list[GridPoint]) -> None:
    """Write the grid's weights and folded biases into the float model (its BatchNorms keep their scales)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for p in grid:
            syn = modules[p.synapse]
            folded = torch.from_numpy(np.clip(p.mantissas.astype(np.float64), *p.levels) * p.step)
            bias = torch.from_numpy(p.bias)
            if p.batchnorm is None:
                syn.weight.copy_(folded)
                syn.bias.copy_(bias)
                continue
            bn = modules[p.batchnorm]
            s = batchnorm_scale(bn)
            keep = _per_channel(s == 0, folded.ndim)  # a zero-scale channel's weights do not matter
            syn.weight.copy_(torch.where(keep, syn.weight.double(), folded / _per_channel(torch.where(
                s == 0, 1.0, s), folded.ndim)))
            if syn.bias is not None:
                syn.bias.zero_()
            bn.bias.copy_(bias + bn.running_mean.double() * s)  # folded bias = beta - mean * scale


def finetune(model: Spikformer, x_train: torch.Tensor, y_train: torch.Tensor, recipe: FinetuneRecipe,
             progress=None, calibration_x: torch.Tensor | None = None) -> dict:
    """Fine-tune ``model`` in place on the deploy grid (the quantizer's, calibrated on the first
    ``recipe.calibration`` inputs of ``calibration_x``, default ``x_train``) and snap it; returns what the model card
    records."""
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    x_cal = (x_train if calibration_x is None else calibration_x)[:recipe.calibration]
    modules = dict(model.named_modules())
    model.eval()  # BatchNorm frozen: its running statistics are what the export folds
    for p in model.parameters():
        p.requires_grad_(False)
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        grid = deploy_grid(model, x_cal, recipe.weight_bits)
        trained = []
        for p in grid:
            syn = modules[p.synapse]
            scale = torch.ones(syn.weight.shape[0], dtype=torch.float64) if p.batchnorm is None \
                else batchnorm_scale(modules[p.batchnorm])
            parametrize.register_parametrization(syn, "weight", OnGrid(scale, p.step, p.levels))
            syn.parametrizations.weight.original.requires_grad_(True)
            trained.append(syn.parametrizations.weight.original)
        opt = torch.optim.Adam(trained, lr=recipe.lr)
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        for p in grid:
            parametrize.remove_parametrizations(modules[p.synapse], "weight", leave_parametrized=False)
        for p in model.parameters():
            p.requires_grad_(False)
        if progress:
            progress(epoch + 1, recipe.epochs, total / len(x_train))
    grid = deploy_grid(model, x_cal, recipe.weight_bits)
    snap_to_grid(model, grid)
    # the export recomputes the grid from the snapped model: it must find the same integers
    again = deploy_grid(model, x_cal, recipe.weight_bits)
    moved = sum(int((np.clip(a.mantissas, *a.levels) != b.mantissas).sum()) for a, b in zip(grid, again))
    step_change = max(abs(b.step / a.step - 1) for a, b in zip(grid, again))
    return {"settings": dataclasses.asdict(recipe), "seconds": round(time.perf_counter() - start, 1),
            "layers": len(grid), "weights": int(sum(p.mantissas.size for p in grid)),
            "weights_off_grid_after_reexport": moved, "max_step_change_after_reexport": step_change}


def write_finetune_card(out: Path, meta: dict, command: str) -> Path:
    """The fine-tuned model's card: its source's card (the same data and recipe) with a section on the fine-tuning
    and on what the 8-bit integer model keeps."""
    r, s = meta["finetune"], meta["finetune"]["settings"]
    source_card = Path(meta["finetune"]["source"]).with_suffix(".md")
    text = source_card.read_text() if source_card.exists() else f"# Model card: {Path(out).name}\n"
    lines = [
        "## Quantization-aware fine-tuning",
        "",
        f"`{command}`: {s['epochs']} epoch(s) on the deploy grid ({s['weight_bits']}-bit weights as the integer "
        f"model holds them, straight-through gradients, BatchNorm frozen), Adam lr {s['lr']}, batch "
        f"{s['batch_size']}, seed {s['seed']}, {s['threads']} CPU threads, {r['seconds']} s; then the "
        f"{r['weights']:,} weights of its {r['layers']} layers and their folded biases were snapped onto the grid the "
        f"quantizer finds when calibrated on the first {s['calibration']} training inputs (re-exporting moves "
        f"{r['weights_off_grid_after_reexport']} of them).",
    ]
    if "integer_test_accuracy" in meta:
        lines += [
            "",
            f"- **Accuracy (float reference)**: test {meta['test_accuracy']:.2%} (before fine-tuning "
            f"{meta['test_accuracy_before_finetune']:.2%}).",
            f"- **Integer model ({meta['integer_weight_bits']}-bit Loihi 2 formats)**: test "
            f"{meta['integer_test_accuracy']:.2%}; prediction agreement with the float model "
            f"{meta['test_agreement']:.2%}; spike decisions alike in every layer >= "
            f"{math.floor(meta['test_min_spike_agreement'] * 1e4) / 100:.2f} %.",
        ]
    path = Path(out).with_suffix(".md")
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")
    return path
