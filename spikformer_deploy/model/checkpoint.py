"""Loading original checkpoints of the Spikformer family (and our own) without ever running code from the file.

Layouts accepted (DESIGN.md §1): timm CheckpointSaver dicts (``state_dict`` + ``args``: Spikformer, Spikingformer,
Spike-driven Transformer), the cifar10dvs train.py dict (``model`` + ``args``), a bare state_dict, and this project's
own format (``save_checkpoint``). Which member a state_dict belongs to follows from its keys (``detect_layout``);
each member has one entry in ``LAYOUTS``: its config from the state_dict's shapes and the checkpoint's args.
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import re
import tempfile
import types
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError, UnsafePickleError
from .base import FamilyModel
from .config import DEFAULT_IMG_SIZE, DEFAULT_T, SpikformerConfig
from .metaspikeformer import MetaSpikeFormer
from .sdt import SpikeDrivenTransformer
from .spikformer import Spikformer
from .spikingformer import Spikingformer

MODEL_CLASSES: dict[str, type[FamilyModel]] = {"spikformer": Spikformer, "spikingformer": Spikingformer,
                                               "sdt": SpikeDrivenTransformer, "metaspikeformer": MetaSpikeFormer}


def build_model(config: SpikformerConfig) -> FamilyModel:
    """The float reference of ``config``'s family member (fresh weights)."""
    return MODEL_CLASSES[config.member](config)

FORMAT_NAME = "spikformer-deploy"
FORMAT_VERSION = 1


def _allowed_globals() -> dict:
    """torch's own weights_only allow-list plus ``argparse.Namespace`` (the ``args`` of original checkpoints)."""
    from torch import _weights_only_unpickler

    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    allowed["argparse.Namespace"] = argparse.Namespace
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals, so a pickle cannot name (and so cannot call) anything else.

    torch 2.3.1 — the newest lava-dl 0.6 accepts — has no ``torch.serialization.add_safe_globals`` and its
    ``weights_only=True`` unpickler refuses to build an ``argparse.Namespace``; this is the same allow-list with that
    one class added (Python's documented "restricting globals" pattern).
    """

    def find_class(self, module: str, name: str):
        allowed = _allowed_globals()
        key = f"{module}.{name}"
        if key not in allowed:
            raise UnsafePickleError(f"{key} is not allowed in a weights file")
        return allowed[key]


def _restricted_load(file, **kwargs):
    return _RestrictedUnpickler(file, **kwargs).load()


# torch.load takes a "pickle module": it uses its Unpickler (subclassed for storages) and load (legacy format).
_restricted_pickle = types.ModuleType("spikformer_deploy_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = _restricted_load


class _Opaque:
    """Stands for whatever a pickle builds while ``_storage_records`` scans it: accepts every construction step
    and runs nothing. ``find_class`` hands out a subclass per allow-listed name (NEWOBJ needs a type)."""

    qualified = ""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Opaque()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _StorageScanner(_RestrictedUnpickler):
    """Reads a torch zip checkpoint's ``data.pkl`` only for its storage records (persistent ids): every global it
    names must be allow-listed, and none is called."""

    def __init__(self, file):
        super().__init__(file)
        self.records: list[tuple[str, int]] = []  # (storage key, bytes declared)

    def find_class(self, module: str, name: str):
        super().find_class(module, name)  # refuses what is not allow-listed
        return type("Opaque", (_Opaque,), {"qualified": f"{module}.{name}"})

    def persistent_load(self, saved_id):
        if not isinstance(saved_id, tuple) or len(saved_id) != 5 or saved_id[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected storage record {str(saved_id)[:80]}")
        _, storage_type, key, _, numel = saved_id
        cls = _allowed_globals().get(getattr(storage_type, "qualified", ""))
        dtype = torch.uint8 if cls is torch.UntypedStorage else getattr(cls, "dtype", None)
        if not isinstance(dtype, torch.dtype) or not isinstance(numel, int) or numel < 0 or not isinstance(key, str):
            raise pickle.UnpicklingError(f"malformed storage record for {str(key)[:40]!r}")
        self.records.append((key, numel * torch._utils._element_size(dtype)))
        return _Opaque()


def _check_storage_records(path: Path) -> None:
    """Every storage a torch zip checkpoint declares must lie inside the archive, before torch touches the data: a
    storage that declares more bytes than its entry holds makes torch read past the data (a crash) or allocate what
    it declares (terabytes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            pickles = [n for n in entries if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                raise CheckpointError(f"{path}: a torch zip checkpoint has one data.pkl, found {len(pickles)}")
            prefix = pickles[0][: -len("data.pkl")]
            size = path.stat().st_size
            scanner = _StorageScanner(io.BytesIO(archive.read(pickles[0])))
            scanner.load()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, pickle.UnpicklingError, ValueError,
            TypeError, AttributeError, IndexError, KeyError, RecursionError, MemoryError) as exc:
        if isinstance(exc, UnsafePickleError):
            raise CheckpointError(f"refusing to load {path}: it references code ({exc})") from None
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {detail}") from None
    for key, nbytes in scanner.records:
        info = entries.get(f"{prefix}data/{key}")
        if info is None:
            raise CheckpointError(f"{path}: storage {key!r} is declared but missing from the archive")
        if info.file_size < nbytes or info.header_offset + info.compress_size > size:
            raise CheckpointError(f"{path}: storage {key!r} declares {nbytes:,} bytes, the archive holds "
                                  f"{info.file_size:,}")


def safe_torch_load(path: str | os.PathLike) -> object:
    """``torch.load`` a file onto the CPU, refusing anything but tensors, plain containers and argparse.Namespace."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    if zipfile.is_zipfile(path):
        _check_storage_records(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except UnsafePickleError as exc:
        raise CheckpointError(f"refusing to load {path}: it references code ({exc})") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {detail}") from None


def _unwrap(obj: object, path: Path) -> tuple[dict, dict, dict | None]:
    """Return (state_dict, args as a dict, own-format config or None)."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    if obj.get("format") == FORMAT_NAME:
        if obj.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: unsupported {FORMAT_NAME} format version {obj.get('format_version')!r}")
        return obj["state_dict"], {}, obj["config"]
    args = obj.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else (args if isinstance(args, dict) else {})
    for key in ("state_dict", "model"):  # timm CheckpointSaver / cifar10dvs train.py
        if isinstance(obj.get(key), dict):
            return obj[key], args, None
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}, None
    raise CheckpointError(f"{path} is not a Spikformer checkpoint: no state_dict among keys {sorted(map(str, obj))[:8]}")


def _strip_prefix(state_dict: dict) -> dict:
    """Drop a DataParallel ``module.`` prefix if every key has it."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def _shape(sd: dict, key: str, path: Path) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"{path} is not a Spikformer checkpoint: missing {key}")
    return tuple(sd[key].shape)


def detect_layout(sd: dict, path: Path) -> tuple[str, str]:
    """(member, variant) of a state_dict, from the keys only its layout has."""
    if "downsample1_1.encode_conv.weight" in sd:
        return "metaspikeformer", "imagenet"
    if "patch_embed.block0_conv.weight" in sd:
        return "spikingformer", "cifar10"
    if "patch_embed.proj1_conv.weight" in sd:
        return "spikingformer", "imagenet"
    if "block.0.attn.talking_heads.weight" in sd:
        return "sdt", "cifar10"  # the variant follows from pooling_stat (infer_sdt)
    if "block.0.attn.q_linear.weight" in sd:
        return "spikformer", "cifar10"
    fc1 = sd.get("block.0.mlp.fc1_conv.weight")
    if fc1 is not None and "block.0.attn.q_conv.weight" in sd:
        return "spikformer", "imagenet" if fc1.ndim == 4 else "cifar10dvs"
    if "patch_embed.proj_conv.weight" not in sd:
        sample = ", ".join(sorted(sd)[:3])
        raise CheckpointError(f"{path} is not a Spikformer-family checkpoint (keys start {sample}, …; "
                              f"expected patch_embed.* and block.*)")
    raise CheckpointError(f"{path}: cannot tell the Spikformer variant: no block.0.attn.q_linear/q_conv weights")


def _pick(name: str, overrides: dict, args: dict, args_key: str | None, default, variant: str):
    """An explicit override wins; else the checkpoint's args; else the variant's default."""
    if overrides.get(name) is not None:
        value = overrides[name]
    elif args_key and args.get(args_key) is not None:
        value = args[args_key]
    else:
        value = default
    if value is None:
        option = name.replace("_", "-")
        raise ConfigError(f"{name} is not stored in this {variant} checkpoint; give it with --{option} "
                          f"(or {name}=... in load_checkpoint)")
    return value


def _depth(sd: dict, path: Path) -> int:
    block_ids = {int(m.group(1)) for k in sd if (m := re.match(r"block\.(\d+)\.", k))}
    if not block_ids:
        raise CheckpointError(f"{path} is not a Spikformer-family checkpoint: no block.* entries")
    return max(block_ids) + 1


def _mlp_ratio(hidden: int, dim: int):
    return hidden // dim if hidden % dim == 0 else hidden / dim


def _num_heads(overrides: dict, args: dict, key: str | None, member: str) -> int:
    num_heads = overrides.get("num_heads")
    if num_heads is not None and key and args.get(key) not in (None, num_heads):
        raise ConfigError(f"num_heads={num_heads} contradicts the checkpoint's args.num_heads={args[key]}")
    return _pick("num_heads", overrides, args, key, None, member)


def infer_spikformer(sd: dict, args: dict, overrides: dict, path: Path, variant: str) -> SpikformerConfig:
    kind = "linear" if variant == "cifar10" else "conv"
    dim = _shape(sd, "patch_embed.rpe_conv.weight", path)[0]
    # cifar10 train.py stores the architecture in args (num_heads, time_step, img_size); imagenet and cifar10dvs do
    # not (their factories hard-code it): only cifar10dvs's args.T and imagenet's args.img_size describe the model.
    t_key = {"cifar10": "time_step", "imagenet": None, "cifar10dvs": "T"}[variant]
    img_key = {"cifar10": "img_size", "imagenet": "img_size", "cifar10dvs": None}[variant]
    return SpikformerConfig(
        variant=variant, dim=dim, depth=_depth(sd, path),
        num_heads=_num_heads(overrides, args, "num_heads" if variant == "cifar10" else None, variant),
        mlp_ratio=_mlp_ratio(_shape(sd, f"block.0.mlp.fc1_{kind}.weight", path)[0], dim),
        num_classes=_shape(sd, "head.weight", path)[0],
        in_channels=_shape(sd, "patch_embed.proj_conv.weight", path)[1],
        img_size=_pick("img_size", overrides, args, img_key, DEFAULT_IMG_SIZE[variant], variant),
        T=_pick("T", overrides, args, t_key, DEFAULT_T[variant], variant))


def infer_spikingformer(sd: dict, args: dict, overrides: dict, path: Path, variant: str) -> SpikformerConfig:
    """Spikingformer's train.py stores num_heads and img_size in args; T is the model's default 4 (train.py never
    passes it; args.time_step is parsed and unused)."""
    first = "patch_embed.block0_conv.weight" if variant == "cifar10" else "patch_embed.proj_conv.weight"
    dim = _shape(sd, "block.0.attn.q_conv.weight", path)[0]
    return SpikformerConfig(
        variant=variant, member="spikingformer", dim=dim, depth=_depth(sd, path),
        num_heads=_num_heads(overrides, args, "num_heads", "spikingformer"),
        mlp_ratio=_mlp_ratio(_shape(sd, "block.0.mlp.mlp1_conv.weight", path)[0], dim),
        num_classes=_shape(sd, "head.weight", path)[0], in_channels=_shape(sd, first, path)[1],
        img_size=_pick("img_size", overrides, args, "img_size", None, "spikingformer"),
        T=_pick("T", overrides, args, None, 4, "spikingformer"))


def infer_sdt(sd: dict, args: dict, overrides: dict, path: Path, variant: str) -> SpikformerConfig:
    """SDT's train.py stores everything in args: time_steps, num_heads, img_size and pooling_stat (its configs:
    0011 for CIFAR, 1111 for ImageNet, which names the variant)."""
    dim = _shape(sd, "block.0.attn.q_conv.weight", path)[0]
    pooling = _pick("pooling", overrides, args, "pooling_stat", None, "sdt")
    return SpikformerConfig(
        variant="imagenet" if pooling == "1111" else "cifar10", member="sdt", pooling=pooling, dim=dim,
        depth=_depth(sd, path), num_heads=_num_heads(overrides, args, "num_heads", "sdt"),
        mlp_ratio=_mlp_ratio(_shape(sd, "block.0.mlp.fc1_conv.weight", path)[0], dim),
        num_classes=_shape(sd, "head.weight", path)[0],
        in_channels=_shape(sd, "patch_embed.proj_conv.weight", path)[1],
        img_size=_pick("img_size", overrides, args, "img_size", None, "sdt"),
        T=_pick("T", overrides, args, "time_steps", None, "sdt"))


META_DOWNSAMPLING = ("downsample1_2", "downsample2", "downsample3", "downsample4")


def infer_metaspikeformer(sd: dict, args: dict, overrides: dict, path: Path, variant: str) -> SpikformerConfig:
    """main_finetune.py's checkpoint ({model, optimizer, epoch, scaler, args}): the widths come from the shapes
    (args.model names a factory, which may not be the architecture), T from args.time_steps (the class sets
    T = 1 and the script overrides it), num_heads from nowhere (an override); the image size is not part of the
    model (fully convolutional), args.input_size is the training one. A distillation head is kept unless
    ``kd=False``."""
    dims = tuple(_shape(sd, f"{name}.encode_conv.weight", path)[0] for name in META_DOWNSAMPLING)
    has_kd = "head_kd.weight" in sd
    kd = has_kd if overrides.get("kd") is None else bool(overrides["kd"])
    if kd and not has_kd:
        raise ConfigError(f"kd=True: {path} has no distillation head (head_kd)")
    return SpikformerConfig(
        variant=variant, member="metaspikeformer", dim=dims[-1], embed_dims=dims, kd=kd,
        depth=len({m.group(0) for k in sd if (m := re.match(r"block[34]\.\d+\.", k))}),
        num_heads=_num_heads(overrides, args, None, "metaspikeformer"),
        mlp_ratio=_mlp_ratio(_shape(sd, "block3.0.mlp.fc1_conv.weight", path)[0], dims[2]),
        num_classes=_shape(sd, "head.weight", path)[0],
        in_channels=_shape(sd, "downsample1_1.encode_conv.weight", path)[1],
        img_size=_pick("img_size", overrides, args, "input_size", None, "metaspikeformer"),
        T=_pick("T", overrides, args, "time_steps", None, "metaspikeformer"))


LAYOUTS = {"spikformer": infer_spikformer, "spikingformer": infer_spikingformer, "sdt": infer_sdt,
           "metaspikeformer": infer_metaspikeformer}


def infer_config(sd: dict, args: dict, overrides: dict, path: Path) -> SpikformerConfig:
    member, variant = detect_layout(sd, path)
    return LAYOUTS[member](sd, args, overrides, path, variant)


def _check_finite(sd: dict, path: Path) -> None:
    for key, value in sd.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{path}: {key} has {bad} NaN/Inf value(s)")


def load_state_dict_checked(model: FamilyModel, sd: dict, path: Path) -> None:
    """Load every used weight strictly; unused original entries (LayerNorms, pos_embed) only if they fit."""
    expected = model.state_dict()
    is_unused_parameter = model.is_unused_parameter
    missing = [k for k in expected if k not in sd and not is_unused_parameter(k)]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [f"{k} {list(sd[k].shape)} (model needs {list(expected[k].shape)})"
                  for k in expected if k in sd and sd[k].shape != expected[k].shape and not is_unused_parameter(k)]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{path} does not fit a {model.config.variant} {model.config.title}: "
                              f"{'; '.join(problems)}")
    usable = {k: v for k, v in sd.items() if k in expected and v.shape == expected[k].shape}
    model.load_state_dict(usable, strict=False)


def load_checkpoint(path: str | os.PathLike, **overrides) -> FamilyModel:
    """Build the float reference from a checkpoint of any family member; returns the model in eval mode with
    ``.config`` (``config.member`` names the member).

    Overrides: ``num_heads``, ``T``, ``img_size``, ``pooling`` (needed when the checkpoint does not record them);
    ``kd`` (Meta-SpikeFormer: False drops a distillation head, which ``model.source["kd_head"]`` then says).
    """
    unknown = set(overrides) - {"num_heads", "T", "img_size", "pooling", "kd"}
    if unknown:
        raise ConfigError(f"unknown load_checkpoint option(s): {', '.join(sorted(unknown))}")
    path = Path(path)
    obj = safe_torch_load(path)
    state_dict, args, own_config = _unwrap(obj, path)
    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path}: the state_dict holds non-tensor values")
    state_dict = _strip_prefix(state_dict)
    if own_config is not None:
        config = SpikformerConfig.from_dict({**own_config, **{k: v for k, v in overrides.items() if v is not None}})
    else:
        config = infer_config(state_dict, args, overrides, path)
    _check_finite(state_dict, path)
    kd_head = "head_kd.weight" in state_dict
    if kd_head and not config.kd:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("head_kd.")}
    model = build_model(config)
    load_state_dict_checked(model, state_dict, path)
    # where the weights came from (manifests, default data): own-format metadata or the original layout
    model.source = {"path": str(path), "meta": obj.get("meta", {}) if own_config is not None else {},
                    "layout": FORMAT_NAME if own_config is not None else _layout_name(obj)}
    if kd_head:
        model.source["kd_head"] = "averaged in" if config.kd else "dropped"
    return model.eval()


def _layout_name(obj: dict) -> str:
    if "state_dict" in obj:
        return "timm"
    if "model" in obj:  # MAE/DeiT util.misc.save_model (Meta-SpikeFormer) or the cifar10dvs train.py
        return "save_model" if "scaler" in obj else "cifar10dvs"
    return "bare"


def save_checkpoint(model: FamilyModel, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write the project's own format (config + state_dict, readable with weights_only), atomically."""
    path = Path(path)
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
               "meta": meta or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def parameter_count(model: FamilyModel) -> int:
    return sum(p.numel() for p in model.parameters())

