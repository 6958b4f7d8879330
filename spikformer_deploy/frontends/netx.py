"""Frontend: a lava-dl netx HDF5 network (``*.net``) as an integer deploy graph.

Read, as lava-dl 0.6's ``netx.hdf5.Network`` builds it (``lava/lib/dl/netx/hdf5.py``):
- ``input`` with a neuron: the frame drives a CUBA neuron group. lava-dl injects it as that group's bias
  (``bias_mant = frame``, ``bias_exp = 6``); here it is the group's synaptic drive ``a = frame`` (``u = a << 6``
  with ``du = 4095``), the same integers in ``v``. An ``Input`` node (8-bit image, ``steps`` = T) feeds it;
- ``conv``: ``Conv2d`` in torch orientation (netx flips and transposes the same array for lava), stride and
  padding in the file's (y, x) = (h, w) order, then a ``LoihiLIF`` (``du = iDecay - 1``, ``dv = vDecay``,
  ``vth = vThMant``, per-channel ``bias_mant`` with ``bias_exp = 6``, as netx fixes);
- ``flatten``: ``Vectorize`` ((c, h, w) order, as netx's ``transpose([2, 1, 0]).flatten()``);
- ``dense``: a 1x1 ``Conv2d`` on the vector, then its neuron group.
Weights are integers already (netx keeps them as given, up to lava's weight-exponent packing, which keeps even
8-bit values exact). Layers are named ``input``, ``conv-0``.., ``fc-0``.. (lava-dl's ground-truth names); each
synapse is ``<layer>.synapse``. What the file holds that this reader does not map is an error naming the layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GraphError
from ..ir import Graph
from ..ir.ops import INTEGER, Conv2d, Input, LoihiLIF, Vectorize

NETX_BIAS_EXP = 6  # netx.hdf5.Network.get_neuron_params
LIF_TYPES = ("LOIHI", "CUBA")
MAX_WEIGHT = 256  # netx.utils.optimize_weight_bits clips to -256..254 (8-bit mantissa, exponent 1)
MAX_INPUT = 2**26  # values in one input frame
LIMITS = {"du": (0, 4095), "dv": (0, 4096), "vth": (0, 2**17 - 1)}  # 12-bit decays, 17-bit threshold mantissa


def _text(value) -> str:
    value = np.ravel(value)[0] if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _neuron(layer, where: str) -> dict:
    if "neuron" not in layer:
        raise GraphError(f"{where}: no neuron group")
    n = layer["neuron"]
    kind = _text(n["type"][()])
    if kind not in LIF_TYPES:
        raise GraphError(f"{where}: {kind} neurons are not supported (CUBA LIF only)")
    missing = [k for k in ("iDecay", "vDecay", "vThMant") if k not in n]
    if missing:
        raise GraphError(f"{where}: neuron lacks {', '.join(missing)}")
    params = {"du": _scalar(n["iDecay"]) - 1, "dv": _scalar(n["vDecay"]), "vth": _scalar(n["vThMant"])}
    for key, (lo, hi) in LIMITS.items():
        if not lo <= params[key] <= hi:
            raise GraphError(f"{where}: {key} {params[key]} is outside Loihi's {lo}..{hi}")
    return params


def _scalar(dataset) -> int:
    value = np.asarray(dataset[()])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number) or not np.isfinite(value).all() \
            or value.reshape(-1)[0] != np.round(value.reshape(-1)[0]):
        raise ValueError(f"{dataset.name} must be one integer")
    return int(value.reshape(-1)[0])


def _integers(values, where: str, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)) or np.abs(a).max(initial=0) > 2**31:
        raise GraphError(f"{where}: {what} must be integers (a netx network for Loihi)")
    return a.astype(np.int64)


def _pair(layer, key: str, default: int) -> tuple[int, int]:
    if key not in layer:
        return (default, default)
    return tuple(int(v) for v in np.broadcast_to(np.ravel(layer[key][()]), 2))


def _neuron_group(g: Graph, name: str, params: dict, channels: int, bias, src: str) -> str:
    bias_mant = np.zeros(channels, dtype=np.int64) if bias is None else \
        np.broadcast_to(_integers(bias, name, "biases"), (channels,)).copy()
    if np.abs(bias_mant).max(initial=0) >= 2**12:
        raise GraphError(f"{name}: bias {int(np.abs(bias_mant).max())} does not fit a 13-bit mantissa")
    return g.add(name, LoihiLIF(bias_mant=bias_mant.astype(np.int16), bias_exp=NETX_BIAS_EXP, **params), [src])


def _layer(g: Graph, layer, x: str | None, counts: dict, where: str, steps: int) -> str:
    """One netx layer into ``g`` after node ``x``; returns the node carrying its output."""
    kind = _text(layer["type"][()])
    where = f"{where} ({kind})"
    if kind == "input":
        shape = tuple(int(d) for d in np.ravel(layer["shape"][()]))  # [C, H, W]
        if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) > MAX_INPUT:
            raise GraphError(f"{where}: input shape {list(shape)} is not [C, H, W] of a frame")
        x = g.add("frame", Input(shape=shape, kind="image", steps=steps, scale=1.0, bits=8))
        if "neuron" in layer:
            x = _neuron_group(g, "input", _neuron(layer, where), shape[0], None, x)
    elif x is None:
        raise GraphError(f"{where}: the network must start with an input layer")
    elif kind == "flatten":
        x = g.add(f"flatten-{counts['dense']}", Vectorize(), [x])
    elif kind in ("conv", "dense"):
        name = f"{'conv' if kind == 'conv' else 'fc'}-{counts[kind]}"
        counts[kind] += 1
        params = _neuron(layer, where)
        if "delay" in layer or _pair(layer, "groups", 1) != (1, 1) or _pair(layer, "dilation", 1) != (1, 1):
            raise GraphError(f"{where}: synaptic delays, groups and dilation are not supported")
        weight = _integers(layer["weight"][()], where, "weights")
        if np.abs(weight).max(initial=0) > MAX_WEIGHT:
            raise GraphError(f"{where}: weight {int(np.abs(weight).max())} exceeds what netx packs into Loihi's "
                             f"8-bit synapses (|w| <= {MAX_WEIGHT})")
        if kind == "dense":
            weight = weight.reshape(int(layer["outFeatures"][()]), -1)[:, :, None, None]
            if len(g.nodes[x].shape) != 3 or g.nodes[x].shape[1:] != (1, 1):
                x = g.add(f"flatten-{counts['dense']}", Vectorize(), [x])
            synapse = Conv2d(weight=weight.astype(np.int16), stride=1, padding=0, weight_bits=8)
        else:
            synapse = Conv2d(weight=weight.astype(np.int16), stride=_pair(layer, "stride", 1),
                             padding=_pair(layer, "padding", 0), weight_bits=8)
        try:
            syn = g.add(f"{name}.synapse", synapse, [x])
        except GraphError as exc:
            raise GraphError(f"{where}: {exc}") from None
        x = _neuron_group(g, name, params, weight.shape[0], layer["bias"][()] if "bias" in layer else None,
                          syn)
        expected = tuple(int(d) for d in np.ravel(layer["shape"][()]))
        if int(np.prod(expected)) != int(np.prod(g.nodes[x].shape)):
            raise GraphError(f"{where}: shape {list(expected)} but its synapse gives "
                             f"{list(g.nodes[x].shape)}")
    else:
        raise GraphError(f"{where}: layer type {kind!r} is not supported")
    return x


def read_netx(path: Path, steps: int | None = None) -> Graph:
    """The integer deploy graph of a netx file; ``steps``: T per inference (default: the file's
    ``simulation/tSample``)."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise GraphError(f"{path}: not a netx HDF5 file ({str(exc).splitlines()[0]})") from None
    with f:
        if "layer" not in f:
            raise GraphError(f"{path}: not a netx network (no 'layer' group)")
        if steps is None:
            steps = int(f["simulation/tSample"][()]) if "simulation/tSample" in f else None
        if not steps or steps < 1:
            raise GraphError(f"{path}: the file gives no time steps per sample; pass them (--T)")
        g = Graph(INTEGER, {"model": {"source": "lava-dl netx", "file": path.name}})
        counts = {"conv": 0, "dense": 0}
        x = None
        for index in sorted(f["layer"], key=lambda k: int(k) if k.isdigit() else -1):
            where = f"{path.name} layer {index}"
            try:
                x = _layer(g, f["layer"][index], x, counts, where, steps)
            except GraphError:
                raise
            except (KeyError, TypeError, ValueError, OverflowError, IndexError, AttributeError, OSError) as exc:
                raise GraphError(f"{where}: malformed ({str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__})") \
                    from None
    g.validate()
    return g
