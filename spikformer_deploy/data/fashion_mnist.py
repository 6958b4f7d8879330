"""Fashion-MNIST (Zalando Research, MIT licence) read from its standard IDX files, offline.

Debian's ``dataset-fashion-mnist`` package installs them in DEFAULT_ROOT; ``--data`` also reads one IDX image file
directly (its labels are the sibling ``*-labels-idx1-ubyte[.gz]`` file).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import from_pixels

FASHION_MNIST_SOURCE = ("Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, Zalando Research, MIT licence): 70,000 "
                        "28x28 grey images, 10 classes; standard split 60,000 train / 10,000 test")
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
IDX_TYPES = {0x08: np.uint8}  # the IDX type codes this reader accepts (every MNIST-family file is unsigned bytes)


def is_idx(path: Path) -> bool:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    return name.endswith(("-idx3-ubyte", "-idx1-ubyte"))


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX array of ``ndim`` dimensions; its header is checked against the bytes that follow."""
    try:
        raw = gzip.open(path).read() if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] != ndim:
        raise DataError(f"{path} is not an IDX file of {ndim}-D unsigned bytes")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if int(np.prod(shape, dtype=np.float64)) != len(raw) - header:
        raise DataError(f"{path}: its header declares {list(shape)} ({int(np.prod(shape, dtype=np.float64)):,} "
                        f"bytes), the file holds {len(raw) - header:,}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def labels_beside(images: Path) -> Path | None:
    path = images.with_name(images.name.replace("-images-idx3-ubyte", "-labels-idx1-ubyte"))
    return path if path != images and path.exists() else None


def read_idx_images(images: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(uint8 images [N, 1, H, W], labels or None) from an IDX image file and its sibling label file."""
    x = torch.from_numpy(read_idx(images, 3).copy()).unsqueeze(1)
    labels = labels_beside(images)
    y = None if labels is None else torch.from_numpy(read_idx(labels, 1).astype(np.int64))
    return x, y


def fashion_mnist(split: str, img_size: int, root: Path = DEFAULT_ROOT) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [N, 1, S, S] on the 8-bit grid, labels) of the standard ``split`` ('train' or 'test')."""
    images = Path(root) / FILES[split][0]
    if not images.exists():
        raise DataError(f"Fashion-MNIST not found: {images} (install the Debian package dataset-fashion-mnist, or "
                        f"give the folder holding the IDX files)")
    x, y = read_idx_images(images)
    if y is None:
        raise DataError(f"{images}: its labels {FILES[split][1]} are missing")
    return from_pixels(x, img_size), y
