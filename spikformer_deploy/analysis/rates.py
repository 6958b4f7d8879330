"""Estimates from published firing rates, for models whose weights are not public: an architecture plus per-layer
rates in, every counting convention and the Loihi 2 estimate out.

The architecture is built with random weights and run once (``api.rows_from_rates``) with each spiking node's output
replaced by independent spikes at its stated rate (``Simulator(spike_rates=...)``: exactly round(rate x elements x T) spikes per layer), so
every count downstream (synaptic events, max-pool ORs, residual sums, attention popcounts) is what the network does
under those rates. Conventions defined by rates (dense ops x rate) are then exact; event-driven ones (ours, Loihi)
are an estimate: real spikes are correlated, these are not. Every output says so.

Rates file (JSON)::

    {"architecture": {"member": "spikingformer", "variant": "imagenet", "dim": 768, "depth": 8, "num_heads": 12,
                      "img_size": 224, "T": 4, "num_classes": 1000},
     "rates": {"patch_embed.proj1_lif": 0.10292, ...},     # output firing rate of every LIF (max-pools optional)
     "rates_csv": "rates.csv",                              # or: a CSV of layer,rate beside the JSON
     "source": "where the rates come from"}
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, DataError
from ..model import SpikformerConfig

KIND = "estimate from rates, not event-driven"
CONFIG_DEFAULTS = {"variant": "imagenet", "mlp_ratio": 4, "num_classes": 1000, "in_channels": 3, "img_size": 224,
                   "T": 4, "member": "spikformer", "pooling": None}


@dataclass
class RateSpec:
    config: SpikformerConfig
    rates: dict[str, float]
    source: str
    path: Path | None = None


def architecture(spec: dict) -> SpikformerConfig:
    """A rates file's architecture: the config's own keys (``SpikformerConfig.from_dict`` checks them), the
    defaults of an ImageNet model for those not given."""
    missing = sorted({"dim", "depth", "num_heads"} - set(spec))
    if missing:
        raise ConfigError(f"the architecture needs {', '.join(missing)}")
    values = {**CONFIG_DEFAULTS, **spec}
    if values["member"] == "sdt" and values["pooling"] is None:
        values["pooling"] = "1111" if values["variant"] == "imagenet" else "0011"
    return SpikformerConfig.from_dict(values)


def _csv_rates(path: Path) -> dict[str, float]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise DataError(f"cannot read the rates CSV {path}: {exc.strerror}") from None
    if not rows or not {"layer", "rate"} <= set(rows[0]):
        raise DataError(f"{path}: a rates CSV needs the columns layer,rate")
    return {r["layer"]: _rate(r["rate"], r["layer"]) for r in rows}


def _rate(value, layer: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise DataError(f"rate of {layer} is not a number: {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise DataError(f"rate of {layer} is {rate:g}, outside 0..1 (a fraction, not a percentage)")
    return rate


def load_rates(path: str | Path) -> RateSpec:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DataError(f"cannot read the rates file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict) or "architecture" not in data:
        raise DataError(f"{path}: a rates file is a JSON object with 'architecture' and 'rates' (or 'rates_csv')")
    rates = {k: _rate(v, k) for k, v in data.get("rates", {}).items()}
    if "rates_csv" in data:
        rates.update(_csv_rates(path.parent / data["rates_csv"]))
    return RateSpec(architecture(data["architecture"]), rates, str(data.get("source", path.name)), path)


def random_model(config: SpikformerConfig, seed: int = 0, bn_bias: float = 0.0):
    """The architecture with random weights: under forced rates its counts do not depend on them. ``bn_bias``,
    added to every BatchNorm bias, drives its neurons to fire on their own (1.0: q, k and v of a Spikformer fire at
    0.1-0.2 on uniform images, near a trained model's)."""
    from ..model.checkpoint import build_model

    torch.manual_seed(seed)
    model = build_model(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.bias.add_(bn_bias)
    return model
