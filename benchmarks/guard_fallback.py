"""How often the guarded float32 reference (``backends/sim/guard.py``) falls back to float64, on the original-code
fixtures and the bundled models (500 Fashion-MNIST test images), and whether it gives float64's spikes and logits.

    .venv/bin/python benchmarks/guard_fallback.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import BUNDLED, BUNDLED_FMNIST, FMNIST_TEST, load_fixture  # noqa: E402  (the fixtures' loader)

from spikformer_deploy import load_checkpoint  # noqa: E402
from spikformer_deploy.backends.sim import Simulator  # noqa: E402
from spikformer_deploy.data import load_data  # noqa: E402
from spikformer_deploy.pipeline import float_graph  # noqa: E402


def cases():
    for variant in ("cifar10", "imagenet", "cifar10dvs"):
        yield f"{variant} fixture", *load_fixture(variant)[:2]
    for name, checkpoint in (("bundled digits", BUNDLED), ("bundled fmnist", BUNDLED_FMNIST)):
        model = load_checkpoint(checkpoint)
        yield name, model, load_data(FMNIST_TEST, model.config)[0][:500]


def main() -> None:
    for name, model, x in cases():
        graph = float_graph(model)
        guarded = Simulator(graph, count=False, record="spikes")
        a = guarded.run(x)
        b = Simulator(graph, count=False, record="spikes", precision="float64").run(x)
        same = torch.equal(a.logits, b.logits) and all(torch.equal(a.outputs[k].double(), b.outputs[k])
                                                       for k in b.outputs)
        checked = [lif for lif, src in guarded.guard.lifs.items() if src is not None]
        decisions = sum(a.outputs[lif].numel() for lif in checked)
        print(f"{name}: {len(x)} inputs, {len(checked)}/{len(guarded.guard.lifs)} LIFs guarded, "
              f"{decisions:,} guarded decisions; rows recomputed in float64: {sum(guarded.repaired.values())}; "
              f"spikes and logits equal to float64: {same}")


if __name__ == "__main__":
    main()
