"""The attention's two Loihi 2 placements side by side (``report``'s table) for the bundled model and two paper
shapes: Spikformer-4-384 on CIFAR-10 (32², T = 4) and Spikformer-8-512 on ImageNet (224², T = 4).

The paper shapes have random weights (``torch.manual_seed(0)``) with every BatchNorm bias raised by ``--bn-bias``
(default 1.0: q, k and v then fire at 0.11-0.16, near a trained Spikformer's; at 0.5 the attention stays silent) and
run on 2 uniform random inputs (``default_rng(0)``): their rates are not a trained model's, and the script prints
them. The bundled model runs on 64 images of its test split.

    .venv/bin/python benchmarks/attention_placement.py [--chips N] [--bn-bias B]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from spikformer_deploy import load_checkpoint
from spikformer_deploy.analysis.report import joules_range
from spikformer_deploy.api import feasibility_report
from spikformer_deploy.bundled import bundled_dataset, bundled_model, bundled_split
from spikformer_deploy.analysis.rates import random_model
from spikformer_deploy.model import SpikformerConfig
from spikformer_deploy.pipeline import integer_graph

SHAPES = {"Spikformer-4-384 CIFAR-10": SpikformerConfig("cifar10", 384, 4, 12, 4, 10, 3, 32, 4),
          "Spikformer-8-512 ImageNet": SpikformerConfig("imagenet", 512, 8, 8, 4, 1000, 3, 224, 4)}


def inputs(cfg: SpikformerConfig) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).random(cfg.input_shape(batch=2), dtype=np.float32))


def ms(s: float) -> str:
    return f"{s * 1e3:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=None, help="chip budget for the automatic choice")
    parser.add_argument("--bn-bias", type=float, default=1.0, help="added to every BatchNorm bias of the paper shapes")
    args = parser.parse_args()
    cases = []
    model = load_checkpoint(bundled_model("digits"))
    x_train, _, x_test, _ = bundled_split(bundled_dataset(model), model.config.img_size)
    cases.append(("bundled digits", model, x_train[:256], x_test[:64]))
    for name, cfg in SHAPES.items():
        x = inputs(cfg)
        cases.append((name, random_model(cfg, seed=0, bn_bias=args.bn_bias), x, x))
    print("| model | placement | neurons | cores | chips | pipeline depth | step latency | latency per inference | "
          "energy (loihi2) | verdict |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |")
    choices = []
    for name, model, x_cal, x in cases:
        start = time.perf_counter()
        report = feasibility_report(integer_graph(model, x_cal), x, "loihi2", args.chips, batch=2)
        for row in report["placements"]["rows"]:
            (low, high), (lat_low, lat_high) = row["step_latency_range_s"], row["latency_range_s"]
            print(f"| {name} | {row['placement']} | {row['neurons']:,} | {row['cores']:,} | {row['chips']} | "
                  f"{row['pipeline_depth']} | {ms(row['step_latency_s'])} ({ms(low)}–{ms(high)}; "
                  f"{row['bound_by']}) | "
                  f"{ms(row['latency_s'])} ({ms(lat_low)}–{ms(lat_high)}) | "
                  f"{joules_range(row['energy_J'], row['energy_range_J'])} | {row['verdict']} |")
        qkv = [r["firing_rate"] for r in report["layers"] if r["name"].endswith(("q_lif", "k_lif", "v_lif"))]
        choices.append(f"{name}: q, k, v fire at {np.mean(qkv):.3f} on average; auto picks "
                       f"{report['placements']['chosen']} ({report['placements']['why']}); "
                       f"{time.perf_counter() - start:.1f} s")
    print()
    for line in choices:
        print(f"- {line}")


if __name__ == "__main__":
    main()
