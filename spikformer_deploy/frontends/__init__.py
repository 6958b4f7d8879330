"""Frontends: source models -> the float deploy graph (hls4ml's converters)."""
from .spikformer import trace

__all__ = ["trace"]
