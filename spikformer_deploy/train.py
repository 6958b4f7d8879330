"""Train a small Spikformer (cifar10 variant) on scikit-learn's digits: the bundled default model."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .data import DIGITS_SOURCE, digits_split
from .model import Spikformer, SpikformerConfig


@dataclass(frozen=True)
class DigitsTraining:
    img_size: int = 16
    dim: int = 64
    depth: int = 1
    num_heads: int = 4
    mlp_ratio: int = 4
    T: int = 4
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0
    max_shift: int = 1  # random translation (pixels) as augmentation
    threads: int = 2  # fixed so that float summation order, hence the result, does not depend on the machine
    model_config: SpikformerConfig = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "model_config", SpikformerConfig(
            variant="cifar10", dim=self.dim, depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
            num_classes=10, in_channels=1, img_size=self.img_size, T=self.T))


def _random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    if max_shift == 0:
        return x
    dx, dy = (torch.randint(-max_shift, max_shift + 1, (2,), generator=gen)).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@torch.no_grad()
def accuracy(model: Spikformer, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def train_digits(settings: DigitsTraining, progress=None) -> tuple[Spikformer, dict]:
    """Train deterministically; ``progress(epoch, epochs, loss)`` is called after each epoch."""
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    x_train, y_train, x_test, y_test = digits_split(settings.img_size, seed=settings.seed)
    model = Spikformer(settings.model_config)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(x_train) // settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), settings.batch_size):
            idx = order[i:i + settings.batch_size]
            loss = F.cross_entropy(model(_random_shift(x_train[idx], settings.max_shift, gen)), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        if progress:
            progress(epoch + 1, settings.epochs, total / len(x_train))
    seconds = time.perf_counter() - start
    model.eval()
    report = {
        "data": DIGITS_SOURCE,
        "split": {"train": len(x_train), "test": len(x_test), "test_fraction": 0.2, "stratified": True,
                  "seed": settings.seed},
        "train_accuracy": accuracy(model, x_train, y_train),
        "test_accuracy": accuracy(model, x_test, y_test),
        "training_seconds": round(seconds, 1),
        "threads": settings.threads,
        "settings": {k: v for k, v in settings.__dict__.items() if k != "model_config"},
    }
    return model, report


def write_model_card(checkpoint_path, config: SpikformerConfig, report: dict):
    """A Markdown model card next to the checkpoint: data, split, config, seed, accuracy, training time."""
    from pathlib import Path

    path = Path(checkpoint_path).with_suffix(".md")
    s = report["settings"]
    lines = [
        f"# Model card: {Path(checkpoint_path).name}",
        "",
        "The default model of spikformer-deploy: used whenever a command is given no checkpoint.",
        "",
        f"- **Architecture**: Spikformer, cifar10 variant of the original code (ZK-Zhou/spikformer), "
        f"{config.depth} block(s), dim {config.dim}, {config.num_heads} heads (head dim {config.head_dim}), "
        f"MLP hidden {config.hidden_dim}, {config.num_classes} classes, T = {config.T}, "
        f"{config.in_channels} input channel, {config.img_size}x{config.img_size} input, {config.num_tokens} tokens.",
        f"- **Data**: {report['data']}; pixels / 16, bilinearly upscaled to {config.img_size}x{config.img_size}.",
        f"- **Split**: stratified, {report['split']['train']} train / {report['split']['test']} test "
        f"(test fraction {report['split']['test_fraction']}, seed {report['split']['seed']}). "
        "The test split was not used for training or model selection.",
        f"- **Training**: `spikformer-deploy train` — AdamW (lr {s['lr']}, one-cycle, weight decay "
        f"{s['weight_decay']}), batch {s['batch_size']}, {s['epochs']} epochs, random shifts of ±{s['max_shift']} px, "
        f"sigmoid surrogate gradient (alpha 4, spikingjelly's default), seed {s['seed']}, "
        f"{report['threads']} CPU threads, {report['training_seconds']} s.",
        f"- **Accuracy (float reference)**: test {report['test_accuracy']:.2%}, train {report['train_accuracy']:.2%}.",
        "",
        "Reproduce: `spikformer-deploy train -o models/spikformer_digits.pth` (same seed and thread count give the "
        "same weights on the same machine type).",
        "",
    ]
    path.write_text("\n".join(lines))
    return path
