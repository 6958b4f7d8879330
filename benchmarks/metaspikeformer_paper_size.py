"""Meta-SpikeFormer's 15M and 55M ImageNet configurations at 224x224 (T = 4, 8 heads) on Loihi 2: the report's cores,
chips, latency, energy range, SOPs and per-layer firing rates, for each form of its chains of synapses: the mapper's
choice per chain (``auto``, the deployed form), every chain folded into one conv, every chain kept apart on relays.

Widths: the original repository's factories (15M: embed_dim [64, 128, 256, 360]; 55M: [128, 256, 512, 640]).
Random weights; BatchNorm statistics measured on random images (train-mode passes, cumulative average) and each
BatchNorm's affine part set so that the LIFs fire at a few per cent: the BatchNorms that start a stage's stream and
those that feed a LIF directly give N(BETA, 1), a branch's last BatchNorm N(0, 1/branches of its stage), the inner
ones of a RepConv N(0, 1). The script prints the rates, so the claim is checked in the run.

    .venv/bin/python benchmarks/metaspikeformer_paper_size.py [--samples 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch

BETA = 0.35
CONFIGS = {"15M": (64, 128, 256, 360), "55M": (128, 256, 512, 640)}
BRANCH_ENDS = ("Conv.bn2", ".bn2", "proj_conv.1", "mlp.fc2_bn")  # the BatchNorms whose output joins the stream
INNER = ("body.1.bn", "body.2.2")  # RepConv's own BatchNorms, followed by another one


def stage_of(name: str) -> str:
    return name.split(".")[0]


def batchnorm_affine(model) -> dict[str, tuple[float, float]]:
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    branches: dict[str, int] = {}
    for n in names:
        if n.endswith(BRANCH_ENDS):
            branches[stage_of(n)] = branches.get(stage_of(n), 0) + 1
    return {n: ((1 / math.sqrt(branches[stage_of(n)]), 0.0) if n.endswith(BRANCH_ENDS) else
                (1.0, 0.0) if n.endswith(INNER) else (1.0, BETA)) for n in names}


def build(widths: tuple[int, ...], seed: int = 0):
    from family_paper_size import with_batchnorms  # benchmarks/ is the script's directory

    from spikformer_deploy.model import SpikformerConfig

    cfg = SpikformerConfig("imagenet", dim=widths[-1], depth=8, num_heads=8, mlp_ratio=4, num_classes=1000,
                           in_channels=3, img_size=224, T=4, member="metaspikeformer", embed_dims=widths)
    return with_batchnorms(cfg, batchnorm_affine, seed)


FORMS = ("auto", "folded", "apart")  # the mapper's choice per chain first: it is the deployed form


def run(size: str, samples: int, form: str) -> dict:
    from spikformer_deploy.analysis import layer_rows, load_profile
    from spikformer_deploy.analysis.report import build_report
    from spikformer_deploy.backends.sim import Simulator
    from spikformer_deploy.pipeline import integer_graph

    start = time.perf_counter()
    model = build(CONFIGS[size])
    x = torch.randn(samples, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    graph = integer_graph(model, x, batch_size=1, chains=form)
    rows = layer_rows(graph, Simulator(graph).run(x).counters)
    report = build_report(graph, rows, load_profile("loihi2"), load_profile("h200_sxm"), None, "random weights")
    perf = report["performance"]
    rates = {r.name: r.firing_rate for r in rows if r.op in ("LIF", "LoihiLIF")}
    chains = [f for f in report["folds"] if f["fold"] == "chain"]
    return {
        "size": size, "form": form, "widths": CONFIGS[size], "seconds": round(time.perf_counter() - start, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "deployed_weights": sum(int(n.op.weight.size) for n in graph.having("synapse")),
        "chains": {kind: {form: sum(f["form"] == form for f in chains if (".attn." in f["last"]) == (kind == "rep"))
                          for form in ("folded", "apart")} for kind in ("rep", "sep")},
        "totals": report["totals"], "verdict": report["verdict"]["state"],
        "latency_s": perf["latency_s"], "step_latency_s": perf["step_latency_s"], "bound_by": perf["bound_by"],
        "pipeline_depth": perf["pipeline_depth"],
        "energy": {f'{e["profile"]}/{e["convention"]}': {"total_J": e["total_J"], "range_J": e.get("range_J"),
                                                         "static_J": e.get("static_J")} for e in report["energy"]},
        "sops": sum(r.sops for r in rows), "rates": rates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--json", help="write the results here as well")
    args = parser.parse_args()
    results = [run(size, args.samples, form) for size in CONFIGS for form in FORMS]
    for res in results:
        t = res["totals"]
        print(f"== Meta-SpikeFormer {res['size']} {list(res['widths'])}, 224x224, T 4, chains {res['form']} "
              f"({res['seconds']} s): {res['parameters']:,} parameters, {res['deployed_weights']:,} deployed weights; "
              f"{t['neurons']:,} neurons, {t['synapses']:,} synapses, {t['cores']:,} cores, {t['chips']} chips "
              f"({t['system']}); {res['verdict']}")
        print(f"   RepConv projections folded/apart {res['chains']['rep']['folded']}/{res['chains']['rep']['apart']}, "
              f"SepConv tails folded/apart {res['chains']['sep']['folded']}/{res['chains']['sep']['apart']}")
        print(f"   latency {res['latency_s'] * 1e3:.3f} ms ({res['pipeline_depth']} pipeline steps, "
              f"{res['step_latency_s'] * 1e6:.2f} us/step, bound by {res['bound_by']}); SOPs {res['sops']:,.0f}")
        for name, e in res["energy"].items():
            rng = f" (range {e['range_J'][0] * 1e3:.1f}-{e['range_J'][1] * 1e3:.1f} mJ)" if e["range_J"] else ""
            static = f", static {e['static_J'] * 1e3:.1f} mJ" if e["static_J"] is not None else ""
            print(f"   energy {name}: {e['total_J'] * 1e3:.1f} mJ{rng}{static}")
        rates = sorted(res["rates"].values())
        print(f"   LIF firing rates: min {rates[0]:.3f}, median {rates[len(rates) // 2]:.3f}, max {rates[-1]:.3f}; "
              f"{sum(0.02 <= r <= 0.20 for r in rates)}/{len(rates)} within 2-20 %")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
