"""Shared test helpers (importable as `support`: pytest.ini puts tests/ on sys.path). The original-code fixtures are
copied into tests/fixtures (see its README): a missing fixture fails a test, it never skips it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikformer_deploy.model import SpikformerConfig

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "original"
RESOURCES = REPO / "spikformer_deploy" / "resources"  # the package data, in the checkout
BUNDLED = RESOURCES / "models" / "spikformer_digits.pth"
BUNDLED_FMNIST = RESOURCES / "models" / "spikformer_fmnist.pth"
PILOTNET = RESOURCES / "calibration" / "loihi2_pilotnet_lif"  # Intel's PilotNet LIF network and its ground truth
FMNIST = REPO / "tests" / "fixtures" / "fashion_mnist"  # 500 test, 256 training images (see its README)
FMNIST_TEST = FMNIST / "t10k-images-idx3-ubyte.gz"
FMNIST_TRAIN = FMNIST / "train-images-idx3-ubyte.gz"

# variant -> (checkpoint file, options the checkpoint does not record)
FIXTURE_CASES = {
    "cifar10": ("model_best.pth.tar", {}),
    "imagenet": ("model_best.pth.tar", {"num_heads": 4}),
    "cifar10dvs": ("checkpoint_max_test_acc1.pth", {"num_heads": 4}),
}


SMALL_CONFIG = SpikformerConfig("cifar10", dim=32, depth=2, num_heads=2, mlp_ratio=4, num_classes=5, in_channels=1,
                                img_size=16, T=2)


def fixture_dir(variant: str) -> Path:
    d = FIXTURES / variant
    if not d.is_dir():
        pytest.fail(f"original-code fixtures not found at {d} (tests/fixtures is part of the repository)")
    return d


def load_fixture(variant: str):
    """(model, input, logits, spikes) of one original-code fixture."""
    from spikformer_deploy import load_checkpoint

    d = fixture_dir(variant)
    ckpt, options = FIXTURE_CASES[variant]
    model = load_checkpoint(d / ckpt, **options)
    return model, torch.load(d / "input.pt"), torch.load(d / "logits.pt"), torch.load(d / "spikes.pt")



def run_cli(capsys, *args):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from spikformer_deploy.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err

FAMILY = REPO / "tests" / "fixtures" / "family"
FAMILY_CASES = ("spikingformer/cifar10", "spikingformer/imagenet", "sdt/cifar10", "sdt/imagenet",
                "metaspikeformer/imagenet")
# case -> (checkpoint file, options it does not record); Meta-SpikeFormer's num_heads is in no checkpoint field and
# its image size is not part of the model (args.input_size is the training size, 224; the fixture runs at 96)
FAMILY_CHECKPOINTS = {"metaspikeformer/imagenet": ("checkpoint-0.pth", {"num_heads": 4, "img_size": 96})}


def load_family_fixture(case: str):
    """(model, input, logits, fp64 logits, spikes) of one family fixture made with the member's original code."""
    from spikformer_deploy import load_checkpoint

    d = FAMILY / case
    if not d.is_dir():
        pytest.fail(f"family fixtures not found at {d} (tests/fixtures is part of the repository)")
    checkpoint, options = FAMILY_CHECKPOINTS.get(case, ("model_best.pth.tar", {}))
    model = load_checkpoint(d / checkpoint, **options)
    return (model, torch.load(d / "input.pt"), torch.load(d / "logits.pt"), torch.load(d / "logits_fp64.pt"),
            torch.load(d / "spikes.pt"))


def assert_reproduces_fixture(result, logits: torch.Tensor, spikes: dict) -> None:
    """A simulator run equals the original code's fixture: every LIF's spike counts exactly, logits to 1e-5 (the
    simulator's float64 against the original's float32)."""
    for name, expected in spikes.items():
        assert torch.equal(result.spike_counts[name], expected), name
    assert (result.logits - logits).abs().max() <= 1e-5
