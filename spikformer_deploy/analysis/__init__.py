"""Analyses read the deploy IR and the simulator's counters; they never read a backend's files."""
from .energy import EnergyEstimate, estimate
from .layers import LayerStats, layer_rows, totals
from .profiles import Profile, ProfileError, builtin_profiles, load_profile

__all__ = ["LayerStats", "layer_rows", "totals", "estimate", "EnergyEstimate", "Profile", "ProfileError", "load_profile",
           "builtin_profiles"]
