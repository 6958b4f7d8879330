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


def _manifest(directory: Path) -> dict:
    if (directory / MANIFEST).is_symlink():
        raise ArtifactError(f"{directory}: {MANIFEST} is a link, not a plain file")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: missing {MANIFEST}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{directory / MANIFEST}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    except OSError as exc:
        raise ArtifactError(f"{directory / MANIFEST}: unreadable ({exc.strerror})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{directory / MANIFEST}: expected a JSON object, got a {type(manifest).__name__}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{directory / MANIFEST}: 'files' must be an object of file name -> sha256")
    for name, digest in files.items():
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArtifactError(f"{directory / MANIFEST}: {name!r} has no sha256 hex digest")
        # an artifact is flat: a listed name is a plain file name, never a path that could leave the directory
        if not name or name in (".", "..", MANIFEST) or "/" in name or "\\" in name or "\0" in name:
            raise ArtifactError(f"{directory / MANIFEST}: {name!r} is not a file name of the artifact")
    for key in ("config", "source", "quantization"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise ArtifactError(f"{directory / MANIFEST}: '{key}' must be an object")
    return manifest


def verify_files(directory: Path) -> dict:
    """Check the manifest's structure, that the directory holds exactly the files it lists (plain files, no links
    out, nothing unlisted) and the sha256 of each; returns the manifest."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"{directory} is not an artifact directory")
    manifest = _manifest(directory)
    listed = set(manifest["files"])
    present = {p.name for p in directory.iterdir()} - {MANIFEST}
    unlisted = sorted(present - listed)
    if unlisted:
        raise ArtifactError(f"{directory}: {unlisted[0]} is not listed in {MANIFEST}"
                            + (" (an export that did not finish)" if unlisted[0] == "INCOMPLETE" else ""))
    for name, digest in manifest["files"].items():
        path = directory / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ArtifactError(f"{directory}: {name} is not a plain file")
        if not path.exists():
            raise ArtifactError(f"{directory}: missing {name} (listed in {MANIFEST})")
        if sha256(path) != digest:
            raise ArtifactError(f"{directory}: {name} does not match its sha256 in {MANIFEST}")
    return manifest


def load_artifact(directory: Path):
    """(integer graph, manifest) of an artifact directory, after ``verify_files``."""
    from .ir.serialize import load_graph

    manifest = verify_files(directory)
    return load_graph(Path(directory)), manifest
