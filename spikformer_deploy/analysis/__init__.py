"""Analyses read the deploy IR and the simulator's counters; they never read a backend's files."""
from .layers import layer_rows, totals

__all__ = ["layer_rows", "totals"]
