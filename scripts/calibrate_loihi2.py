"""Fit hw_profiles/loihi2.yaml on every public measured Loihi 2 run (calibration/loihi2_measured), cross-validate the
fit, and predict runs from their counters.

    .venv/bin/python scripts/calibrate_loihi2.py                     # rewrite the profile's fitted constants
    .venv/bin/python scripts/calibrate_loihi2.py --check             # exit 1 if the profile differs from the fit
    .venv/bin/python scripts/calibrate_loihi2.py --cv [--json]       # cross-validation table and the YOLO-KP check
    .venv/bin/python scripts/calibrate_loihi2.py --predict RUNS.json [--json]

RUNS.json: records in the pack's schema (runs.json, or a list of its records, or one record): ``run_id``,
``chips.chips_used_by_network``, ``cores.total`` and ``activity.syn_ops_per_step`` / ``neuron_updates_per_step``
are required; ``activity.busiest_core_syn_ops_per_step``, ``activity.output_spikes_per_step`` and
``activity.remote_spikes_busiest_chip_per_step`` are used where present. What is fitted and how is in
spikformer_deploy/calibration.py.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

from spikformer_deploy.analysis import load_profile
from spikformer_deploy.analysis.profiles import PROFILE_DIR
from spikformer_deploy.calibration import (MEASURED_PACK, counter_activity, cross_validate, fitted_profile,
                                           intel_estimate_us, measured_run, measured_runs, predict, profile_entries,
                                           workload_of, yolo_check)
from spikformer_deploy.errors import DeployError

PATH = PROFILE_DIR / "loihi2.yaml"
QUANTITIES = {"step_time_us": "step time (µs)", "dynamic_uJ_per_step": "dynamic energy (µJ/step)",
              "static_W_per_chip": "static power (W/chip)"}


def replace_block(text: str, key: str, block: str, indent: str) -> str:
    """``text`` with the YAML block of ``key`` at ``indent`` replaced by ``block`` (the rest as written)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{indent}{key}:"))
    end = next(i for i in range(start + 1, len(lines) + 1)
               if i == len(lines) or (lines[i].startswith(indent) and not lines[i].startswith(indent + " ")
                                      and not lines[i].startswith(indent + "-")))
    lines[start:end] = [block]
    return "".join(lines)


def regenerated(text: str, entries: dict, fitted_on: list[str]) -> str:
    for key, entry in entries.items():
        block = yaml.safe_dump({key: entry}, sort_keys=False, allow_unicode=True, width=116)
        text = replace_block(text, key, "".join("  " + line for line in block.splitlines(keepends=True)), "  ")
    return replace_block(text, "fitted_on", yaml.safe_dump({"fitted_on": fitted_on}, sort_keys=False), "")


def read_records(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeployError(f"{path}: not readable as JSON ({str(exc).splitlines()[0]})") from None
    records = data.get("runs", [data]) if isinstance(data, dict) else data
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records) or not records:
        raise DeployError(f"{path}: expected a record, a list of records or {{'runs': [...]}}")
    return records


def print_cv(rows: list[dict], check: dict) -> None:
    print("| fold | run | quantity | measured | predicted (range) | error | inside |")
    print("| --- | --- | --- | ---: | --- | ---: | --- |")
    for r in rows:
        print(f"| {r['fold']} | {r['run_id']} | {QUANTITIES[r['quantity']]} | {r['measured']:.4g} | "
              f"{r['predicted']:.4g} ({r['low']:.4g}–{r['high']:.4g}) | {r['error']:+.1%} | "
              f"{'yes' if r['inside'] else 'no'} |")
    print("\n| quantity | fold | median abs. error | inside its range |\n| --- | --- | ---: | ---: |")
    for q, label in QUANTITIES.items():
        for fold in ("leave one run out", "leave one workload out"):
            chosen = [r for r in rows if r["quantity"] == q and r["fold"] == fold]
            if chosen:
                print(f"| {label} | {fold} | {statistics.median(abs(r['error']) for r in chosen):.1%} | "
                      f"{sum(r['inside'] for r in chosen)}/{len(chosen)} |")
    s = check["step_time_us"]
    print(f"\nYOLO-KP through our placement and traffic rule: {check['chips']} chips (measured "
          f"{check['chips_measured']}); busiest chip {check['busiest_chip_remote_spikes']:,.0f} remote spikes per "
          f"step (Intel's routing estimate: {check['intel_busiest_chip_remote_spikes']:,.0f}); step "
          f"{s['value']:.0f} µs ({s['low']:.0f}–{s['high']:.0f}) against {check['measured_us']:.0f} µs measured "
          f"(steady state {check['measured_spread_us'][0]:.0f}–{check['measured_spread_us'][1]:.0f}): "
          f"{'inside' if check['inside'] else 'outside'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the profile differs from the fit")
    mode.add_argument("--cv", action="store_true", help="cross-validation table and the YOLO-KP check")
    mode.add_argument("--predict", type=Path, metavar="RUNS.json", help="predict these runs with the profile")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    try:
        profile = load_profile(PATH)
        if args.predict:
            records = read_records(args.predict)
            runs = [measured_run(r, counter_activity(r, profile), ()) for r in records]
            out = [{k: v for k, v in predict(run, profile).items() if k != "bound_by"} for run in runs]
            if args.json:
                print(json.dumps(out, indent=1))
            for run, p in zip(runs, out) if not args.json else ():
                measured = f" (measured {run.us_per_step:.4g} µs)" if run.us_per_step else ""
                print(f"{run.run_id}: " + "; ".join(
                    f"{QUANTITIES[q]} {p[q]['value']:.4g} ({p[q]['low']:.4g}–{p[q]['high']:.4g})" for q in QUANTITIES)
                      + measured)
            return 0
        runs, ours = measured_runs(profile)
        if args.cv:
            rows, check = cross_validate(runs, profile), yolo_check(fitted_profile(runs, profile))
            records = {r["run_id"]: r for r in json.loads((MEASURED_PACK / "runs.json").read_text())["runs"]}
            intel = {k: intel_estimate_us(r) for k, r in records.items()}
            if args.json:
                print(json.dumps({"rows": rows, "yolo_check": check, "intel_latency_model_us": intel}, indent=1))
            else:
                print_cv(rows, check)
                print("\nIntel's own latency model on the hardware counters (µs per step): " + ", ".join(
                    f"{workload_of(k)} {v:.4g} (measured {records[k]['timing']['us_per_step']:.4g})"
                    for k, v in intel.items() if k.endswith(("d24200a8", "6b752b7f", "20240220"))))
            return 0
        entries, fitted_on = profile_entries(runs, profile, ours)
        text = PATH.read_text()
        new = regenerated(text, entries, fitted_on)
        if args.check:
            for key, entry in entries.items():
                if profile.constants[key].to_dict() != {k: v for k, v in entry.items()}:
                    print(f"{PATH.name}: {key} differs from the fit: {entry}")
            if list(profile.fitted_on) != fitted_on:
                print(f"{PATH.name}: fitted_on differs from the fit: {fitted_on}")
            return 0 if new == text else 1
        PATH.write_text(new)
        for key, c in entries.items():
            print(f"{key}: {c['value']:.4g} {c['unit']} ({c['low']:.4g}..{c['high']:.4g}), {c['kind']}")
        print(f"fitted on {len(fitted_on)} runs; " + (f"wrote {PATH}" if new != text else f"{PATH} already up to date"))
        return 0
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
