"""ONNX export of the float reference, T unrolled: the GPU-runtime reference path."""
from .export import ONNX_FILE, write_onnx

__all__ = ["write_onnx", "ONNX_FILE"]
