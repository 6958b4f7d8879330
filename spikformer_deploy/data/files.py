"""User data for ``simulate --data``: an image folder (one sub-folder per class), ``.npz`` with ``x``/``y``, an IDX
image file (MNIST family, labels from the sibling file), or DVS event frames ``[N, T, 2, H, W]`` in ``.npy``/``.npz``.
Images of another size are resized by ``to_model_input`` whatever their source, and 8-bit sources (image files,
IDX, ``uint8`` arrays) stay on the 8-bit grid: the same pictures give the same bits. Every problem is a one-line
DataError."""
from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..model import SpikformerConfig
from .fashion_mnist import is_idx, read_idx_images
from .images import from_pixels, to_model_input

MIN_PIXEL_LIMIT = 4096 * 4096  # photos of any usual size pass, whatever the model's input
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def load_data(path: str | Path, config: SpikformerConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x, labels or None) shaped for ``config``'s forward."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data {path} does not exist")
    if path.is_dir():
        x, y = _image_folder(path, config)
    elif path.suffix in (".npz", ".npy"):
        x, y = _arrays(path)
    elif is_idx(path):
        x, y = read_idx_images(path)
    else:
        raise DataError(f"data {path}: expected an image folder, .npz, .npy or an IDX image file (*-idx3-ubyte[.gz])")
    x = _check_shape(x, config, path)
    if not torch.isfinite(x).all():
        raise DataError(f"data {path} holds NaN or Inf values")
    if y is not None and len(y) != len(x):
        raise DataError(f"data {path}: {len(x)} inputs but {len(y)} labels")
    if y is not None and ((y < 0).any() or (y >= config.num_classes).any()):
        raise DataError(f"data {path}: labels must be 0..{config.num_classes - 1}")
    return x, y


def load_frames(path: str | Path, shape: tuple[int, ...]) -> torch.Tensor:
    """Frames for a network whose input is ``shape`` = [C, H, W] (a netx network): ``.npy``/``.npz`` (``x``) of one
    frame or a batch, as [C, H, W] or in netx's (x, y, c) layout [W, H, C]."""
    path = Path(path)
    if not path.is_file() or path.suffix not in (".npz", ".npy"):
        raise DataError(f"data {path}: expected a .npy or .npz file of frames")
    x, _ = _arrays(path)
    if tuple(x.shape[-3:]) == tuple(shape[::-1]) and tuple(shape[::-1]) != tuple(shape):
        x = x.transpose(-1, -3)  # (x, y, c) -> (c, y, x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"data {path}: frames of shape {list(x.shape)}; the network takes [B,] "
                        f"{list(shape)} (or netx's (x, y, c) {list(shape[::-1])})")
    if not torch.isfinite(x.float()).all():
        raise DataError(f"data {path} holds NaN or Inf values")
    return x.float().contiguous()


def _read_npy(fp, available: int, where: str) -> np.ndarray:
    """One .npy array from ``fp`` (``available`` bytes long), its header checked against the bytes that follow
    before anything is allocated: a header can declare terabytes."""
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fp)
    if dtype.hasobject:
        raise DataError(f"cannot read {where}: it holds pickled objects, not numbers (never unpickled)")
    needed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if needed > available - fp.tell():
        raise DataError(f"{where}: its header declares {list(shape)} {dtype} ({needed:,} bytes), the file holds "
                        f"{max(available - fp.tell(), 0):,}")
    fp.seek(0)
    return fmt.read_array(fp, allow_pickle=False)


def _arrays(path: Path):
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                members = {i.filename[:-4]: i for i in z.infolist() if i.filename.endswith(".npy")}
                if "x" not in members:
                    raise DataError(f"{path} has no array 'x' (found: {', '.join(sorted(members)) or 'none'})")
                arrays = {}
                for key in ("x", "y"):
                    if key in members:
                        with z.open(members[key]) as member:
                            arrays[key] = _read_npy(io.BytesIO(member.read()), members[key].file_size,
                                                    f"{path}[{key}]")
            x, y = arrays["x"], arrays.get("y")
        else:
            with open(path, "rb") as fp:
                x, y = _read_npy(fp, path.stat().st_size, str(path)), None
    except DataError:
        raise
    except Exception as exc:  # numpy and zipfile raise many types for foreign or damaged files
        raise DataError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__}") \
            from None
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{path}: x must be numeric, got {x.dtype}")
    if y is not None and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must hold integer class labels, got {y.dtype}")
    x = torch.from_numpy(np.array(x, dtype=np.uint8 if x.dtype == np.uint8 else np.float32))
    return x, None if y is None else torch.from_numpy(y.astype(np.int64).reshape(-1))


def _image_folder(path: Path, config: SpikformerConfig):
    from PIL import Image, UnidentifiedImageError

    if config.variant == "cifar10dvs":
        raise DataError("a cifar10dvs model takes event frames (.npy/.npz [N, T, 2, H, W]), not an image folder")
    classes = sorted(d for d in path.iterdir() if d.is_dir())
    numbered = bool(classes) and all(d.name.isdigit() for d in classes)
    if numbered:  # sub-folders 0..9: each is its class number (a folder may hold a subset of the classes)
        classes = sorted(classes, key=lambda d: int(d.name))
    if not classes:
        raise DataError(f"image folder {path} has no class sub-folders")
    if len(classes) > config.num_classes:
        raise DataError(f"image folder {path} has {len(classes)} classes; the model has {config.num_classes}")
    mode = {1: "L", 3: "RGB"}.get(config.in_channels)
    if mode is None:
        raise DataError(f"image folders need a 1- or 3-channel model, this one takes {config.in_channels}")
    images, labels = [], []
    # an image is resized to the model's input: anything far larger is refused before it is decoded (a PNG can
    # declare gigapixels in a few bytes)
    max_pixels = max(MIN_PIXEL_LIMIT, 64 * config.img_size**2)
    for index, folder in enumerate(classes):
        label = int(folder.name) if numbered else index
        for file in sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with Image.open(file) as img:
                    if img.width * img.height > max_pixels:
                        raise DataError(f"image {file} is {img.width}x{img.height}: more than {max_pixels:,} pixels "
                                        f"for a {config.img_size}x{config.img_size} model")
                    with warnings.catch_warnings():
                        warnings.simplefilter("error", Image.DecompressionBombWarning)
                        arr = np.asarray(img.convert(mode), dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
                    Image.DecompressionBombWarning) as exc:
                raise DataError(f"cannot read image {file}: {str(exc).splitlines()[0] if str(exc) else exc}") \
                    from None
            t = torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1).copy()).permute(2, 0, 1)
            images.append(from_pixels(t[None], config.img_size)[0])
            labels.append(label)
    if not images:
        raise DataError(f"image folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return torch.stack(images), torch.tensor(labels)


def _check_shape(x: torch.Tensor, config: SpikformerConfig, path: Path) -> torch.Tensor:
    """Images of the model's channels at any size (resized here), or event frames of exactly its shape."""
    c, s = config.in_channels, config.img_size
    if config.variant == "cifar10dvs":
        if x.ndim != 5 or tuple(x.shape[2:]) != (c, s, s):
            raise DataError(f"data {path}: shape {list(x.shape)}, the model needs event frames [N, T, {c}, {s}, {s}]")
        return x.float()
    if x.ndim == 3 and c == 1:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != c or min(x.shape[2:]) < 1:
        raise DataError(f"data {path}: shape {list(x.shape)}, the model needs images [N, {c}, H, W] "
                        f"(resized to {s}x{s})")
    if len(x) == 0:
        raise DataError(f"data {path} is empty")
    if max(x.shape[2:]) > 64 * s:
        raise DataError(f"data {path}: images of {x.shape[2]}x{x.shape[3]} for a {s}x{s} model")
    if x.dtype == torch.uint8:  # 8-bit pixels 0..255
        return from_pixels(x, s)
    return x if tuple(x.shape[2:]) == (s, s) else to_model_input(x, s, eight_bit=False)
