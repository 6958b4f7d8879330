"""The `simulate` command as a whole against the dense floor and against its integer side alone (issue: the whole
`simulate` at the integer simulator's speed), on the Spikformer-4-384 cifar10 shape (random weights, batch 32,
T = 4), measured side by side in one run, each in its own process (peak RSS is that process's):

- ``simulate_command``: what `simulate` runs per batch (``runner.run_batch``): the float graph (the reference: in
  guarded float32, ``backends/sim/guard.py``) and the integer graph with counters, both recording spikes for the
  per-layer agreement;
- ``simulator``: the integer side alone (counters on);
- ``float_guarded``: the float side alone, and ``float64``: the same graph in float64 (the reference before the
  guard), with the rows the guard recomputed in float64;
- the dense floor: the dense-equivalent FLOPs per image at the fp32 GEMM rate measured in this run.

    .venv/bin/python benchmarks/bench_simulate.py [--batch 32] [--repeats 3] [--threads 2]
"""
from __future__ import annotations

from bench_sim import floor_rate, parse_args, run_isolated  # benchmarks/ is the script's directory


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    results = {kind: run_isolated(kind, args) for kind in ("simulate_command", "simulator", "float_guarded",
                                                           "float64")}
    floor = floor_rate(results["simulator"]["dense_macs_per_image"], args.threads)
    integer = results["simulator"]["images_per_s"]
    print(f"Spikformer-4-384 (cifar10), batch {args.batch}, T=4, {args.threads} threads; dense floor {floor:.2f} "
          f"images/s")
    for kind, info in results.items():
        print(f"  {kind:18s} {info['images_per_s']:7.2f} images/s = {info['images_per_s'] / floor:5.2f} x floor "
              f"= {info['images_per_s'] / integer:5.2f} x the integer side; peak RSS {info['peak_rss_mb']:7.0f} MB"
              + (f"; {info['repaired_rows']} rows recomputed in float64 per batch" if "repaired_rows" in info
                 else ""))


if __name__ == "__main__":
    main()
