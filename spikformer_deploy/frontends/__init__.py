"""Frontends: source models -> deploy graphs (hls4ml's converters). A Spikformer gives the float graph; a lava-dl
netx network gives an integer graph directly."""
from .netx import read_netx
from .spikformer import trace

__all__ = ["trace", "read_netx"]
