"""The float reference model, T unrolled by tracing, as ONNX (opset 17).

The float model, not the IR, is exported: ONNX is the GPU-runtime reference, and the float model is what
the integer IR is measured against. Input ``x``: the model's input with a dynamic batch axis; output ``logits``.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from ...model import Spikformer

ONNX_FILE = "model.onnx"
OPSET = 17


def write_onnx(model: Spikformer, directory: Path) -> list[Path]:
    import onnx

    sample = torch.zeros(model.config.input_shape(batch=1))
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the loop over T and the shape check are meant to be fixed by tracing: T is part of the exported model
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model.eval(), (sample,), buffer, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                          do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    proto.doc_string = (f"Spikformer {model.config.variant} {model.config.depth}-{model.config.dim}, float reference, "
                        f"T={model.config.T} unrolled; spikingjelly LIF (tau 2, hard reset, h >= v_th)")
    path = Path(directory) / ONNX_FILE
    path.write_bytes(proto.SerializeToString())
    return [path]
