"""Datasets available offline."""
from .digits import DIGITS_SOURCE, digits_split
from .fashion_mnist import FASHION_MNIST_SOURCE, fashion_mnist
from .files import load_data, load_frames, open_data
from .stream import Inputs

__all__ = ["digits_split", "DIGITS_SOURCE", "fashion_mnist", "FASHION_MNIST_SOURCE", "load_data", "load_frames",
           "open_data", "Inputs"]
