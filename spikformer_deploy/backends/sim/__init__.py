"""Bit-accurate integer simulator (and float "exact" mode) with per-layer operation counters."""
from ...counters import COUNTER_DOC, MAXIMA_DOC, Counters
from .simulator import KERNELS, SimResult, Simulator, attention_counts, attention_inner, is_quantized

__all__ = ["Simulator", "SimResult", "Counters", "KERNELS", "COUNTER_DOC", "MAXIMA_DOC", "attention_counts",
           "attention_inner", "is_quantized"]
