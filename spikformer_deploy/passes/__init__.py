"""Passes: plain functions Graph -> Graph, each appending a PassRecord of what it changed."""
from .fold_batchnorm import fold_batchnorm
from .manager import run_passes
from .quantize import Calibration, quantize
from .rewrite_ssa import cheaper_order, rewrite_ssa

__all__ = ["fold_batchnorm", "rewrite_ssa", "quantize", "Calibration", "run_passes", "cheaper_order"]
