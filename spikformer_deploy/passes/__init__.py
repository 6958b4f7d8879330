"""Passes: plain functions Graph -> Graph, each appending a PassRecord of what it changed."""
from .fold_batchnorm import fold_batchnorm
from .fold_linear_chains import fold_linear_chains, linear_chains
from .lower_attention import (ATTENTION_CHOICES, PLACEMENTS, attention_placement, check_attention_choice,
                              lower_attention)
from .manager import run_passes
from .quantize import Calibration, quantize
from .rewrite_ssa import cheaper_order, rewrite_ssa

__all__ = ["fold_batchnorm", "fold_linear_chains", "linear_chains", "rewrite_ssa", "quantize", "Calibration", "run_passes",
           "cheaper_order",
           "lower_attention", "PLACEMENTS", "ATTENTION_CHOICES", "attention_placement", "check_attention_choice"]
