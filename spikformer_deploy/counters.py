"""Per-node, per-time-step operation counters (written by the simulator, read by the analyses), summed over samples."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

# Counter names and their meaning (per node, per time step, summed over samples):
COUNTER_DOC = {
    "in_events": "non-zero input elements (events)",
    "in_value": "sum of input values (a graded event of value n counts n)",
    "sops": "event-driven synaptic ops: sum over input events of value x fan-out",
    "sops_paper": "Spikformer paper convention: input firing rate x dense MACs of the layer",
    "macs": "multiply-accumulates actually needed (analog input of the first conv, the head)",
    "dense_macs": "dense-equivalent MACs of the layer (what a GPU computes)",
    "in_bounds_macs": "synapses: every input element times its fan-out (dense without the padding taps)",
    "event_fanout": "synapses reading the analog image: non-zero pixels times their fan-out",
    "pooled_nonzero": "head: non-zero entries of the pooled vector it multiplies",
    "ands": "bitwise ANDs of the spiking attention (Q AND K or K AND V; SDSA's k AND v and q masks; per bit)",
    "adds": "additions: popcount and spike-gated accumulations in attention, accumulations in residual sums and "
            "token means, comparisons of graded max-pools",
    "neuron_updates": "neuron (or OR-unit, or graded relay) state updates",
    "spikes": "output spikes (graded relays of the real-valued stream: non-zero graded outputs)",
}
MAXIMA_DOC = {
    "max_abs_a": "largest |synaptic drive W s| of the float graph (calibration; the integer neuron reports |u|)",
    "max_abs_u": "largest |u| (24-bit state)",
    "max_abs_v": "largest |v| (24-bit state; float mode: |V|)",
}


class Counters:
    def __init__(self, T: int):
        self.T = T
        self.samples = 0
        self.counts: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
        self.maxima: dict[str, dict[str, float]] = defaultdict(dict)

    def add(self, node: str, name: str, per_step) -> None:
        values = np.asarray(per_step, dtype=np.float64).reshape(-1)
        if values.size == 1 and self.T > 1:  # a scalar applies to every step
            values = np.full(self.T, float(values[0]))
        if name in self.counts[node]:
            self.counts[node][name] += values
        else:
            self.counts[node][name] = values.copy()

    def maximum(self, node: str, name: str, value: float) -> None:
        self.maxima[node][name] = max(self.maxima[node].get(name, 0.0), float(value))

    def merge(self, other: "Counters") -> None:
        self.samples += other.samples
        for node, counts in other.counts.items():
            for name, values in counts.items():
                self.add(node, name, values)
        for node, maxima in other.maxima.items():
            for name, value in maxima.items():
                self.maximum(node, name, value)

    def total(self, node: str, name: str) -> float:
        """Sum over time steps, averaged per sample."""
        values = self.counts.get(node, {}).get(name)
        return 0.0 if values is None or not self.samples else float(values.sum()) / self.samples

    def per_sample(self) -> dict[str, dict[str, float]]:
        return {node: {name: self.total(node, name) for name in counts} for node, counts in self.counts.items()}

    def to_dict(self) -> dict:
        return {"samples": self.samples, "T": self.T,
                "per_sample": self.per_sample(),
                "per_step": {node: {name: (v / max(self.samples, 1)).tolist() for name, v in counts.items()}
                             for node, counts in self.counts.items()},
                "maxima": {node: dict(m) for node, m in self.maxima.items()}}
