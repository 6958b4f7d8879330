"""Bit-accurate integer simulator (and float "exact" mode); operation counters as its observer."""
from ...counters import COUNTER_DOC, MAXIMA_DOC, Counters
from .counting import COUNTS, CountingObserver
from .simulator import KERNELS, Observer, SimResult, Simulator, attention_inner

__all__ = ["Simulator", "SimResult", "Counters", "KERNELS", "COUNTS", "COUNTER_DOC", "MAXIMA_DOC", "Observer",
           "CountingObserver", "attention_inner"]
