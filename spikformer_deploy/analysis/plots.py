"""PNG plots (matplotlib, Agg): per-layer energy breakdown."""
from __future__ import annotations

from pathlib import Path

from .energy import EnergyEstimate


def energy_breakdown_png(estimate: EnergyEstimate, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(estimate.per_layer)
    values = [estimate.per_layer[n] * 1e6 for n in names]
    ranges = estimate.layer_ranges
    # the calibrated constants' spread as error bars (low .. high around the value)
    xerr = None if not ranges else [[v - ranges[n][0] * 1e6 for n, v in zip(names, values)],
                                    [ranges[n][1] * 1e6 - v for n, v in zip(names, values)]]
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(names) + 1.2))
    ax.barh(range(len(names)), values, xerr=xerr, color="#4c72b0", ecolor="#333333", capsize=2)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("energy per inference (µJ)")
    spread = f" ({estimate.range[0] * 1e6:.3g}–{estimate.range[1] * 1e6:.3g})" if ranges else ""
    ax.set_title(f"{estimate.profile} — {estimate.convention}: {estimate.total * 1e6:.3g}{spread} µJ per inference",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})  # no timestamps/versions: same input, same bytes
    plt.close(fig)
    return path
