"""Lava (lava-nc) process graph of the integer IR, bit-exact with the simulator on Loihi2SimCfg(fixed_pt)."""
from .network import LavaNetwork, LavaResult, build_network

__all__ = ["LavaNetwork", "LavaResult", "build_network"]
