"""Datasets available offline."""
from .digits import DIGITS_SOURCE, digits_split
from .files import load_data, load_frames

__all__ = ["digits_split", "DIGITS_SOURCE", "load_data", "load_frames"]
