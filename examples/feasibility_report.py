"""Does a paper-size Spikformer fit on Loihi 2? The feasibility report of a model shape (random weights: the mapping,
limits and chip count depend on the shape; rates and energy on random weights are only indicative).

    python examples/feasibility_report.py [--depth 8] [--dim 512] [--img-size 224] [--chips N] [--out report.md]
"""
import argparse
import sys
from pathlib import Path

import torch

import spikformer_deploy as sd

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--variant", default="imagenet", choices=["imagenet", "cifar10"])
parser.add_argument("--depth", type=int, default=8)
parser.add_argument("--dim", type=int, default=512)
parser.add_argument("--heads", type=int, default=8)
parser.add_argument("--img-size", type=int, default=224)
parser.add_argument("--T", type=int, default=4)
parser.add_argument("--chips", type=int, default=None, help="chips available (the verdict says whether it fits)")
parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
args = parser.parse_args()

try:
    config = sd.SpikformerConfig(variant=args.variant, dim=args.dim, depth=args.depth, num_heads=args.heads,
                                 mlp_ratio=4, num_classes=1000 if args.variant == "imagenet" else 10, in_channels=3,
                                 img_size=args.img_size, T=args.T)
    torch.manual_seed(0)
    model = sd.Spikformer(config).eval()
    x = torch.rand(config.input_shape(batch=2), generator=torch.Generator().manual_seed(0))
    graph = sd.integer_graph(model, x)
    report = sd.feasibility_report(graph, x[:1], "loihi2", args.chips, "1 uniform random image (indicative rates)")
except sd.DeployError as exc:
    sys.exit(f"error: {exc}")
t = report["totals"]
print(f"Spikformer-{args.depth}-{args.dim} at {args.img_size}²: {t['neurons']:,} neurons, {t['synapses']:,} "
      f"synapses -> {t['cores']:,} cores on {t['chips']} chip(s) ({t['system']}); verdict: {report['verdict']['state']}")
for reason in report["verdict"]["reasons"]:
    print(f"  - {reason}")
if args.out is not None:
    args.out.write_text(sd.report_markdown(report))
    print(f"wrote {args.out}")
