"""The float reference model, T unrolled by tracing, as ONNX (opset 17).

The float model, not the IR, is exported: ONNX is the GPU-runtime reference, and the float model is what
the integer IR is measured against. Input ``x``: the model's input with a dynamic batch axis; output ``logits``.

torch 2.3's TorchScript exporter takes time quadratic in the number of traced nodes (pytorch/pytorch#121422: per node
it copies the whole value map): 40 s for a Spikformer-8-768 at T = 4. So the stem, each block and the head are traced
on their own and joined into one graph — the same nodes in the same order (onnxruntime gives identical outputs), in
8 s.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ...model import FamilyModel

ONNX_FILE = "model.onnx"
OPSET = 17


class _Part(nn.Module):
    """A part of the model to trace on its own: ``forward(x) = part(model, x)``."""

    def __init__(self, model: FamilyModel, part):
        super().__init__()
        self.model, self.part = model, part

    def forward(self, x):
        return self.part(self.model, x)


def _stem(model: FamilyModel, x):
    """Input ``[B, ...]`` -> the first part's output ``[T, B, ...]`` (the patch embedding)."""
    return model.parts()[0](model.time_major_input(x))


def _head(model: FamilyModel, x):
    """The last block's output ``[T, B, ...]`` -> logits ``[B, classes]``."""
    return model.logits(x)


def _trace(part: nn.Module, sample: torch.Tensor, batch_in: int, batch_out: int):
    """One part as an ONNX model with input ``in`` and output ``out`` (their batch axes dynamic)."""
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the loop over T and the shape check are meant to be fixed by tracing: T is part of the exported model
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(part, (sample,), buffer, input_names=["in"], output_names=["out"],
                          dynamic_axes={"in": {batch_in: "batch"}, "out": {batch_out: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def _join(parts: list, doc: str):
    """Chain the parts (each one's ``out`` feeds the next one's ``in``) into one model with input ``x`` and output
    ``logits``; every name inside part i gets the prefix ``i/`` (blocks reuse their modules' local names)."""
    from onnx import compose, helper

    nodes, initializers, value_info = [], [], []
    previous = "x"
    for i, part in enumerate(parts):
        compose.add_prefix(part, f"{i}/", inplace=True)
        last = i == len(parts) - 1
        rename = {f"{i}/in": previous, f"{i}/out": "logits" if last else f"{i}/out"}
        for node in part.graph.node:
            for k, name in enumerate(node.input):
                node.input[k] = rename.get(name, name)
            for k, name in enumerate(node.output):
                node.output[k] = rename.get(name, name)
        previous = f"{i}/out"
        nodes += part.graph.node
        initializers += part.graph.initializer
        value_info += part.graph.value_info
    graph_in, graph_out = parts[0].graph.input[0], parts[-1].graph.output[0]
    graph_in.name, graph_out.name = "x", "logits"
    graph = helper.make_graph(nodes, "spikformer", [graph_in], [graph_out], initializer=initializers,
                              value_info=value_info)
    model = helper.make_model(graph, opset_imports=parts[0].opset_import, ir_version=parts[0].ir_version,
                              producer_name=parts[0].producer_name, producer_version=parts[0].producer_version)
    model.doc_string = doc
    return model


def write_onnx(model: FamilyModel, directory: Path) -> list[Path]:
    import onnx

    model = model.eval()
    x = torch.zeros(model.config.input_shape(batch=1))
    with torch.no_grad():
        # the wrappers in eval mode too: the exporter restores each traced module's mode onto all its children
        parts = [_trace(_Part(model, _stem).eval(), x, 0, 1)]
        stream = _stem(model, x)  # [T, 1, ...]: what each later part and the head are traced on
        for part in model.parts()[1:]:
            parts.append(_trace(part, stream, 1, 1))
            stream = part(stream)
        parts.append(_trace(_Part(model, _head).eval(), stream, 1, 0))
    cfg = model.config
    proto = _join(parts, f"{cfg.title} {cfg.variant} {cfg.depth}-{cfg.dim}, float reference, T={cfg.T} unrolled; "
                         f"spikingjelly LIF (tau 2, hard reset, h >= v_th)")
    onnx.checker.check_model(proto, full_check=True)
    path = Path(directory) / ONNX_FILE
    path.write_bytes(proto.SerializeToString())
    return [path]
