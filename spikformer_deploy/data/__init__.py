"""Datasets available offline."""
from .digits import DIGITS_SOURCE, digits_split

__all__ = ["digits_split", "DIGITS_SOURCE"]
