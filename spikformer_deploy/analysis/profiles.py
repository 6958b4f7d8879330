"""Hardware profiles: every number with a unit, a source and a kind (measured, calibrated, published, estimate,
assumption), and where its source spreads a ``low``-``high`` range.

Built-in profiles are package data (``spikformer_deploy/resources/hw_profiles/*.yaml``); users may pass their own file.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..bundled import resource
from ..errors import ProfileError

PROFILE_DIR = resource("hw_profiles")
KINDS = ("measured", "calibrated", "published", "estimate", "assumption")
BOUNDS = ("low", "high")
UNITS = {"pJ": 1e-12, "nJ": 1e-9, "J": 1.0, "ns": 1e-9, "us": 1e-6, "s": 1.0, "W": 1.0, "mW": 1e-3,
         "TFLOP/s": 1e12, "GFLOP/s": 1e9, "TB/s": 1e12, "GB/s": 1e9, "count": 1.0, "ratio": 1.0, "hops": 1.0}
# constants each energy model needs, with the kind of unit each must have
REQUIRED = {
    "per_op": {"e_mac": "J", "e_ac": "J", "e_sram_read_64b": "J", "e_int8_mult": "J", "e_int32_add": "J"},
    "loihi": {"e_synop": "J", "e_neuron_active": "J", "e_spike_tile": "J",
              "e_hop_ew": "J", "e_hop_ns": "J", "mean_hops": "hops", "e_host_op": "J", "e_interchip_bit": "J",
              "neuron_passes": "count", "t_synop": "s", "t_neuron": "s", "t_barrier": "s", "t_embedded_op": "s",
              "t_interchip_bit": "s", "spike_bits_binary": "count", "spike_bits_graded": "count",
              "static_power_chip": "W", "cores_per_chip": "count", "neurons_per_core": "count",
              "synapse_memory_bits_per_core": "count", "input_axons_per_core": "count",
              "output_axons_per_core": "count", "graded_spike_bits": "count", "max_delay": "count",
              "shared_conv_weights": "count", "embedded_cores_per_chip": "count", "max_weight_bits": "count"},
    "gpu": {"tdp": "W", "idle_power": "W", "peak_bf16": "FLOP/s", "peak_fp32": "FLOP/s",
            "achievable_fraction": "ratio", "mem_bandwidth": "B/s", "launch_latency": "s", "throughput_batch": "count"},
}
DIMENSION = {"pJ": "J", "nJ": "J", "J": "J", "ns": "s", "us": "s", "s": "s", "W": "W", "mW": "W",
             "TFLOP/s": "FLOP/s", "GFLOP/s": "FLOP/s", "TB/s": "B/s", "GB/s": "B/s", "count": "count",
             "ratio": "ratio", "hops": "hops"}


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    kind: str
    source: str
    low: float | None = None  # the range its source spreads over (e.g. run-to-run), in ``unit``
    high: float | None = None

    @property
    def si(self) -> float:
        return self.value * UNITS[self.unit]

    def at(self, bound: str) -> "Constant":
        """This constant with its ``low`` or ``high`` end as the value (itself where it has no range)."""
        end = getattr(self, bound)
        return self if end is None else Constant(end, self.unit, self.kind, self.source, self.low, self.high)

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    model: str
    notes: str
    constants: dict[str, Constant]
    path: str
    fitted_on: tuple[str, ...] = ()  # the measured runs a calibrated profile was fitted on (run ids)

    def __getitem__(self, key: str) -> float:
        """The constant in SI units (J, s, W, FLOP/s)."""
        return self.constants[key].si

    @property
    def has_ranges(self) -> bool:
        return any(c.low is not None for c in self.constants.values())

    def at(self, bound: str) -> "Profile":
        """Every constant at the ``low`` or ``high`` end of its range: the bounds of an estimate."""
        return dataclasses.replace(self, constants={k: c.at(bound) for k, c in self.constants.items()})

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "model": self.model, "notes": self.notes, "path": self.path,
                **({"fitted_on": list(self.fitted_on)} if self.fitted_on else {}),
                "constants": {k: c.to_dict() for k, c in self.constants.items()}}


def builtin_profiles() -> list[str]:
    names = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
    if not names:  # an estimate needs at least one: never an empty energy table
        raise ProfileError(f"no built-in hardware profiles in {PROFILE_DIR}: the installation is incomplete")
    return names


def load_profile(name_or_path: str | Path) -> Profile:
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ProfileError(f"unknown profile {name_or_path!r}; built-in: {', '.join(builtin_profiles())}")
    if not path.is_file():
        raise ProfileError(f"profile {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path.name}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_profile(data, path)


def parse_profile(data, path: Path) -> Profile:
    where = f"profile {path.name}"
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping at the top level")
    for key in ("name", "model", "constants"):
        if key not in data:
            raise ProfileError(f"{where}: missing '{key}'")
    model = data["model"]
    if model not in REQUIRED:
        raise ProfileError(f"{where}: model: unknown {model!r}; expected one of {', '.join(REQUIRED)}")
    if not isinstance(data["constants"], dict):
        raise ProfileError(f"{where}: constants: expected a mapping")
    constants = {}
    for key, entry in data["constants"].items():
        field = f"{where}: constants.{key}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{field}: expected value, unit, kind and source")
        for part in ("value", "unit", "kind", "source"):
            if part not in entry or entry[part] in (None, ""):
                raise ProfileError(f"{field}: missing '{part}'")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ProfileError(f"{field}.value: expected a non-negative number, got {value!r}")
        if entry["unit"] not in UNITS:
            raise ProfileError(f"{field}.unit: unknown unit {entry['unit']!r}; known: {', '.join(UNITS)}")
        if entry["kind"] not in KINDS:
            raise ProfileError(f"{field}.kind: {entry['kind']!r} is not one of {', '.join(KINDS)}")
        bounds = {}
        for bound in BOUNDS:
            end = entry.get(bound)
            if end is not None and (isinstance(end, bool) or not isinstance(end, (int, float))
                                    or not math.isfinite(end) or end < 0):
                raise ProfileError(f"{field}.{bound}: expected a non-negative number, got {end!r}")
            bounds[bound] = None if end is None else float(end)
        if (bounds["low"] is None) != (bounds["high"] is None):
            raise ProfileError(f"{field}: give both 'low' and 'high', or neither")
        if bounds["low"] is not None and not bounds["low"] <= value <= bounds["high"]:
            raise ProfileError(f"{field}: value {value} is outside its range {bounds['low']}..{bounds['high']}")
        constants[key] = Constant(float(value), entry["unit"], entry["kind"], str(entry["source"]), **bounds)
    for key, dim in REQUIRED[model].items():
        if key not in constants:
            raise ProfileError(f"{where}: constants.{key}: missing (a {model} profile needs it)")
        if DIMENSION[constants[key].unit] != dim:
            raise ProfileError(f"{where}: constants.{key}.unit: {constants[key].unit} is not a unit of {dim}")
    fitted_on = data.get("fitted_on") or []
    if not isinstance(fitted_on, list) or not all(isinstance(r, str) for r in fitted_on):
        raise ProfileError(f"{where}: fitted_on: expected a list of run ids")
    return Profile(name=str(data["name"]), title=str(data.get("title", data["name"])), model=model,
                   notes=str(data.get("notes", "")).strip(), constants=constants, path=str(path),
                   fitted_on=tuple(fitted_on))
