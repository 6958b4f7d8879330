"""``export``: an artifact directory with the integer IR, the target files and a manifest, written atomically.

Layout: ``graph.json`` + ``params.safetensors`` (integer IR), target files (``model.onnx``, ``model.nir``, …) and
``manifest.json`` (tool and dependency versions, source checkpoint hash, config, quantization settings, sha256 of
every file). Written into a temporary directory beside the destination and renamed when complete; exporting the
same input twice gives byte-identical files.
"""
from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

import torch

from .artifact import MANIFEST, sha256
from .errors import ArtifactError
from .outputs import check_dir_target, mark_complete, move_into_place, partial_directory
from .ir.serialize import save_graph
from .model import Spikformer
from .passes import attention_placement
from .pipeline import integer_graph

DEPENDENCIES = ("torch", "numpy", "lava-nc", "lava-dl", "nir", "nirtorch", "snntorch", "onnx", "onnxruntime",
                "safetensors", "h5py")


NIR_WEIGHTS = ("float", "grid")  # the float model's folded weights (float64), or the deployed 8-bit grid's


def _writers(nir_weights: str = "float"):
    """target -> writer(model, integer graph, directory) -> files written."""
    from .backends.netx import write_netx_stem
    from .backends.nir import write_nir
    from .backends.onnx import write_onnx
    from .frontends import trace
    from .passes import fold_batchnorm
    from .passes.quantize import grid_points

    def nir(model, graph, d):
        # NIR carries the float meaning with the attention's original scale (before rewrite_ssa); on request with
        # the integer graph's weights, as int8 mantissas and a step per layer
        grid = {p.synapse: p for p in grid_points(graph)} if nir_weights == "grid" else None
        return write_nir(fold_batchnorm(trace(model)), d, grid)

    # loihi2: the Lava process graph is built from graph.json + params.safetensors (every artifact has them);
    # the target adds the stem as lava-dl netx HDF5
    return {"loihi2": lambda model, graph, d: write_netx_stem(graph, d),
            "onnx": lambda model, graph, d: write_onnx(model, d), "nir": nir}


def targets() -> list[str]:
    return sorted(_writers())


def versions() -> dict[str, str]:
    out = {"spikformer-deploy": _version("spikformer-deploy")}
    out.update({name: _version(name) for name in DEPENDENCIES})
    return out


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def export(model: Spikformer, out_dir: Path, target_names: list[str], calibration_x: torch.Tensor,
           weight_bits: int = 8, input_bits: int = 8, force: bool = False, source: dict | None = None,
           nir_weights: str = "float", batch_size: int = 64, chains: str = "auto",
           attention: str = "embedded", chips: int | None = None) -> dict:
    """Write an artifact directory: the integer graph quantized with ranges calibrated on ``calibration_x``, each
    target's files (``loihi2``: Lava + netx, ``nir``, ``onnx``) and a manifest (versions, configuration, sha256 of
    every file; ``chains``: see ``pipeline.float_graph``; ``attention``, ``chips``: ``pipeline.place_attention``). Written into a partial directory and moved into place when
    complete; the same inputs give byte-identical files."""
    out_dir = Path(out_dir)
    if nir_weights not in NIR_WEIGHTS:
        raise ArtifactError(f"unknown NIR weights {nir_weights!r}; choose from {', '.join(NIR_WEIGHTS)}")
    writers = _writers(nir_weights)
    unknown = [t for t in target_names if t not in writers]
    if unknown:
        raise ArtifactError(f"unknown target {unknown[0]!r}; choose from {', '.join([*writers, 'all'])}")
    check_artifact_target(out_dir, force)
    # the integer graph only: no writer reads the float graph, and holding its float64 weights costs 0.5 GB (8-768)
    int_g = integer_graph(model, calibration_x, weight_bits, input_bits, batch_size, chains, attention, chips)
    return write_artifact(out_dir, int_g, [lambda d, name=name: writers[name](model, int_g, d)
                                           for name in target_names], force, {
        "targets": sorted(target_names), "source": source or {}, "config": model.config.to_dict(),
        **({"nir_weights": nir_weights} if "nir" in target_names else {}),
        **({"attention": {"asked": attention, "chips_budget": chips, "placed": attention_placement(int_g)}}
           if attention_placement(int_g) else {}),
        "quantization": {"weight_bits": weight_bits, "input_bits": input_bits, "chains": chains,
                         "calibration_samples": len(calibration_x),
                         "calibration_sha256": hashlib.sha256(
                             calibration_x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()}})


def export_integer_graph(graph, out_dir: Path, force: bool = False, source: dict | None = None) -> dict:
    """The artifact of a graph that is integer already (a netx network): the IR and the Lava target, no float
    model (so no ONNX or NIR)."""
    out_dir = Path(out_dir)
    check_artifact_target(out_dir, force)
    return write_artifact(out_dir, graph, [], force, {"targets": ["loihi2"], "source": source or {}})


def write_artifact(out_dir: Path, graph, writers: list, force: bool, fields: dict) -> dict:
    """``graph.json`` + ``params.safetensors``, each writer's files and the manifest (versions, ``fields``, the
    sha256 of every file), written into a partial directory and moved into place when complete."""
    try:
        with partial_directory(out_dir.resolve().parent, out_dir.name) as tmp:
            files = save_graph(graph, tmp)
            for write in writers:
                files += write(tmp)
            manifest = {"format": "spikformer-deploy-artifact", "version": 1, "versions": versions(), **fields,
                        "files": {p.name: sha256(p) for p in sorted(files, key=lambda p: p.name)}}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
            umask = os.umask(0)
            os.umask(umask)
            mark_complete(tmp)
            for path in tmp.iterdir():  # some writers (safetensors, mkdtemp) create owner-only files
                os.chmod(path, 0o666 & ~umask)
            os.chmod(tmp, 0o777 & ~umask)
            move_into_place(tmp, out_dir, force)
    except OSError as exc:
        raise ArtifactError(f"writing {out_dir} failed: {exc}") from None
    return manifest


def check_artifact_target(out_dir: Path, force: bool) -> None:
    """Before any work: ``out_dir`` is free (or --force), and its parent can take it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ArtifactError(f"output {out_dir} is a file, not an artifact directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ArtifactError(f"output {out_dir} exists and is not empty (use --force to replace it)")
    check_dir_target(out_dir.resolve().parent, "into")
