"""Energy per inference of a model on every hardware profile (Loihi 2, Loihi, 45 nm CMOS conventions, GPUs), from
the event-driven counts of its integer simulation, each figure with its kind and range.

    python examples/energy_comparison.py [CHECKPOINT] [--samples N] [--profile NAME ...]
"""
import argparse
import sys
from pathlib import Path

import spikformer_deploy as sd

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint", nargs="?", type=Path, default=None, help="default: the bundled digits model")
parser.add_argument("--samples", type=int, default=64, help="test inputs to count on")
parser.add_argument("--profile", action="append", default=None, help="profile name or YAML (default: all)")
args = parser.parse_args()

try:
    model = sd.load_checkpoint(args.checkpoint or sd.bundled_model("digits"))
    x_train, _, x_test, y_test = sd.bundled_data(model)
    run = sd.simulate(model, x_test[:args.samples], y_test[:args.samples], calibration_x=x_train[:256])
    estimates = sd.energy(run, args.profile)
except sd.DeployError as exc:
    sys.exit(f"error: {exc}")
totals = run.totals()
print(f"{run.samples} inputs: float top-1 {run.scores['float_accuracy']:.2%}, integer {run.scores['int_accuracy']:.2%},"
      f" {totals['sops']:,.0f} SOPs per inference")
# every constant of a profile has a kind (measured, calibrated, published, estimate, assumption) and a source
kinds = {p.name: ", ".join(sorted({c.kind for c in p.constants.values()})) for p in map(sd.load_profile, {
    e.profile for e in estimates})}
print(f"{'profile':<10} {'convention':<13} {'energy / inference':>20}  {'range':<24} constants' kinds")
for e in estimates:
    spread = f"{e.range[0] * 1e6:.3f}–{e.range[1] * 1e6:.3f} µJ" if e.range else "no spread in its sources"
    print(f"{e.profile:<10} {e.convention:<13} {e.total * 1e6:>17.3f} µJ  {spread:<24} {kinds[e.profile]}")
