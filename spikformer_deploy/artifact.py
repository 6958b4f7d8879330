"""Reading an artifact directory (below the backends, which build from it): the manifest and the sha256 of every file.

``export`` writes the directory; ``verify_files`` is the one check every reader goes through first.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ArtifactError

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_files(directory: Path) -> dict:
    """Check the manifest and the sha256 of every file it lists; returns the manifest."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is not an artifact directory")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: missing {MANIFEST}") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{directory / MANIFEST}: not valid JSON ({exc.msg})") from None
    for name, digest in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory}: missing {name} (listed in {MANIFEST})")
        if sha256(path) != digest:
            raise ArtifactError(f"{directory}: {name} does not match its sha256 in {MANIFEST}")
    return manifest


def load_artifact(directory: Path):
    """(integer graph, manifest) of an artifact directory, after ``verify_files``."""
    from .ir.serialize import load_graph

    manifest = verify_files(directory)
    return load_graph(Path(directory)), manifest
