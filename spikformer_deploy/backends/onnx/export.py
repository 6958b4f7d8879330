"""The float reference model, T unrolled by tracing, as ONNX (opset 17).

The float model, not the IR, is exported: ONNX is the GPU-runtime reference, and the float model is what
the integer IR is measured against. Input ``x``: the model's input with a dynamic batch axis; output ``logits``.

torch 2.3's TorchScript exporter takes time quadratic in the number of traced nodes (pytorch/pytorch#121422: per node
it copies the whole value map): 40 s for a Spikformer-8-768 at T = 4. So the stem, each block and the head are traced
on their own and joined into one graph — the same nodes in the same order (onnxruntime gives identical outputs), in
8 s. A block with the same structure as one traced before (same module types, parameter shapes and input shape) is
not traced again: its graph is the earlier one's with its own initializers (``_initializer_sources``): 1 s per
block of a Spikformer-8-768.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
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


def _bn_scale(bn: nn.Module) -> torch.Tensor:
    return bn.weight.detach() / (bn.running_var.detach() + bn.eps).sqrt()


def _fold_bias(bn: nn.Module) -> np.ndarray:
    """The folded bias of a bias-free conv: the BatchNorm's alone (``_fold``)."""
    return (bn.bias.detach() - bn.running_mean.detach() * _bn_scale(bn)).numpy()


def _fold(conv: nn.Module, bn: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of ``conv`` with the BatchNorm after it folded in, operation for operation as torch 2.3's
    exporter folds them (``fuseConvBatchNorm`` in torch/csrc/jit/passes/onnx/eval_peephole.cpp), in float32."""
    scale = _bn_scale(bn)
    weight = conv.weight.detach() * scale.reshape(-1, *[1] * (conv.weight.dim() - 1))
    if conv.bias is None:
        return weight.numpy(), _fold_bias(bn)
    return weight.numpy(), ((conv.bias.detach() - bn.running_mean.detach()) * scale + bn.bias.detach()).numpy()


def _candidate(part: nn.Module, key: tuple) -> np.ndarray:
    """The value of one ``_candidates`` key in ``part``."""
    if key[0] == "fold":
        _, conv, bn, which = key
        if conv is None:
            return _fold_bias(part.get_submodule(bn))
        return _fold(part.get_submodule(conv), part.get_submodule(bn))[which]
    tensor = dict([*part.named_parameters(), *part.named_buffers()])[key[1]].detach()
    return tensor.T.contiguous().numpy() if key[0] == "transposed" else tensor.numpy()


def _candidates(part: nn.Module) -> dict[tuple, np.ndarray]:
    """What an initializer of ``part``'s graph can be: a parameter or buffer, a matrix transposed (a linear layer's
    MatMul operand), or a conv's weight or bias with a BatchNorm folded in (every conv with every BatchNorm of its
    width: the value decides which)."""
    tensors = [*part.named_parameters(), *part.named_buffers()]
    out = {("tensor", name): t.detach().numpy() for name, t in tensors}
    out.update({("transposed", name): t.detach().T.contiguous().numpy() for name, t in tensors if t.dim() == 2})
    modules = dict(part.named_modules())
    convs = [n for n, m in modules.items() if isinstance(m, nn.modules.conv._ConvNd)]
    norms = [n for n, m in modules.items() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for b in norms:
        out[("fold", None, b, 1)] = _fold_bias(modules[b])
        for c in convs:
            if modules[c].weight.shape[0] == modules[b].weight.shape[0]:
                weight, bias = _fold(modules[c], modules[b])
                out[("fold", c, b, 0)] = weight
                if modules[c].bias is not None:
                    out[("fold", c, b, 1)] = bias
    return out


def _initializer_sources(part: nn.Module, proto) -> dict[str, tuple] | None:
    """Each initializer of ``part``'s traced graph as the one candidate (``_candidates``) equal to it bit for bit
    (the parameter it is named after, if any); None where an initializer has no such candidate or several."""
    from onnx import numpy_helper

    candidates = _candidates(part)
    sources = {}
    for init in proto.graph.initializer:
        value = numpy_helper.to_array(init)
        named = [("tensor", init.name)] if ("tensor", init.name) in candidates else list(candidates)
        hits = [k for k in named if candidates[k].shape == value.shape and candidates[k].dtype == value.dtype
                and np.array_equal(candidates[k], value)]
        if len(hits) != 1:
            return None
        sources[init.name] = hits[0]
    return sources


def _structure(part: nn.Module, sample: torch.Tensor) -> tuple:
    """What makes two parts trace to the same graph: module types, parameter and buffer shapes, input shape."""
    return (tuple((n, type(m).__name__) for n, m in part.named_modules()),
            tuple((n, tuple(t.shape)) for n, t in [*part.named_parameters(), *part.named_buffers()]),
            tuple(sample.shape))


def _retraced(proto, sources: dict[str, tuple], part: nn.Module):
    """``proto`` (another part's graph of the same structure) with ``part``'s initializers."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    for init in out.graph.initializer:
        init.CopyFrom(numpy_helper.from_array(_candidate(part, sources[init.name]), init.name))
    return out


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
        traced = {}  # structure -> (graph, initializer sources or None)
        for part in model.parts()[1:]:
            structure = _structure(part, stream)
            if structure in traced and traced[structure][1] is not None:
                parts.append(_retraced(*traced[structure], part))
            else:
                parts.append(_trace(part, stream, 1, 1))
                traced.setdefault(structure, (parts[-1], _initializer_sources(part, parts[-1])))
            stream = part(stream)
        parts.append(_trace(_Part(model, _head).eval(), stream, 1, 0))
    cfg = model.config
    proto = _join(parts, f"{cfg.title} {cfg.variant} {cfg.depth}-{cfg.dim}, float reference, T={cfg.T} unrolled; "
                         f"spikingjelly LIF (tau 2, hard reset, h >= v_th)")
    onnx.checker.check_model(proto, full_check=True)
    path = Path(directory) / ONNX_FILE
    path.write_bytes(proto.SerializeToString())
    return [path]
