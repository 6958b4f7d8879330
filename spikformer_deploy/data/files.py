"""User data for ``simulate --data``: an image folder (one sub-folder per class), ``.npz`` with ``x``/``y``, an IDX
image file (MNIST family, labels from the sibling file), or DVS event frames ``[N, T, 2, H, W]`` in ``.npy``/``.npz``.
Images of another size are resized by ``to_model_input`` whatever their source, and 8-bit sources (image files,
IDX, ``uint8`` arrays) stay on the 8-bit grid: the same pictures give the same bits. Every problem is a one-line
DataError."""
from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..model import SpikformerConfig
from .fashion_mnist import is_idx, read_idx_images
from .images import from_pixels, to_model_input
from .stream import Inputs

MIN_PIXEL_LIMIT = 4096 * 4096  # photos of any usual size pass, whatever the model's input
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def load_data(path: str | Path, config: SpikformerConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x, labels or None) shaped for ``config``'s forward, all read into memory."""
    inputs, labels = open_data(path, config)
    return inputs[:], labels


def open_data(path: str | Path, config: SpikformerConfig) -> tuple[Inputs, torch.Tensor | None]:
    """(inputs read batch by batch, labels or None): image folders and ``.npy`` files stream from disk (the file
    list, or the array's header, is read now, checked, and the first input decoded so that a bad file or a wrong
    shape fails here; a later bad image fails when its batch is read); ``.npz`` and IDX files, compressed, are read
    whole."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data {path} does not exist")
    if path.is_dir():
        files, y = _image_files(path, config)
        reader = ImageFiles(tuple(str(f) for f in files), config.in_channels, config.img_size)
        reader(np.arange(1))  # an unreadable first image fails now, not at the first batch
        inputs = Inputs(reader, (config.in_channels, config.img_size, config.img_size), np.arange(len(files)))
    elif path.suffix == ".npy":
        inputs, y = _mapped_npy(path, config), None
    elif path.suffix == ".npz":
        inputs, y = _in_memory(*_arrays(path), config, path)
    elif is_idx(path):
        inputs, y = _in_memory(*read_idx_images(path), config, path)
    else:
        raise DataError(f"data {path}: expected an image folder, .npz, .npy or an IDX image file (*-idx3-ubyte[.gz])")
    if y is not None and len(y) != len(inputs):
        raise DataError(f"data {path}: {len(inputs)} inputs but {len(y)} labels")
    if y is not None and ((y < 0).any() or (y >= config.num_classes).any()):
        raise DataError(f"data {path}: labels must be 0..{config.num_classes - 1}")
    return inputs, y


def _in_memory(x: torch.Tensor, y, config: SpikformerConfig, path: Path) -> tuple[Inputs, torch.Tensor | None]:
    return Inputs.of(_finite(_check_shape(x, config, path), path)), y


def _finite(x: torch.Tensor, path: Path) -> torch.Tensor:
    if not torch.isfinite(x).all():
        raise DataError(f"data {path} holds NaN or Inf values")
    return x


@dataclass(frozen=True)
class MappedNpy:
    """Inputs of a memory-mapped ``.npy``: only the rows a batch asks for are read."""
    path: str
    config: SpikformerConfig

    def __call__(self, indices: np.ndarray) -> torch.Tensor:
        rows = np.load(self.path, mmap_mode="r", allow_pickle=False)[indices]
        x = torch.from_numpy(np.array(rows, dtype=np.uint8 if rows.dtype == np.uint8 else np.float32))
        return _finite(_check_shape(x, self.config, Path(self.path)), Path(self.path))


def _mapped_npy(path: Path, config: SpikformerConfig) -> Inputs:
    reader = MappedNpy(str(path), config)
    try:
        with open(path, "rb") as fp:  # the header against the file's size, before anything is mapped
            shape, dtype = _npy_header(fp, path.stat().st_size, str(path))
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise DataError(f"{path}: x must be numeric, got {dtype}")
        count = shape[0] if shape else 0
        if count == 0:
            raise DataError(f"data {path} is empty")
        first = reader(np.arange(1))  # a wrong shape fails now, not at the first batch
    except DataError:
        raise
    except Exception as exc:  # numpy raises many types for foreign or damaged files
        raise DataError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__}") \
            from None
    return Inputs(reader, tuple(first.shape[1:]), np.arange(count))


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


def _npy_header(fp, available: int, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the .npy array in ``fp`` (``available`` bytes long), checked against the bytes that follow
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
    return shape, dtype


def _read_npy(fp, available: int, where: str) -> np.ndarray:
    """One .npy array from ``fp``, its header checked first (``_npy_header``)."""
    _npy_header(fp, available, where)
    fp.seek(0)
    return np.lib.format.read_array(fp, allow_pickle=False)


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


def _image_files(path: Path, config: SpikformerConfig) -> tuple[list[Path], torch.Tensor]:
    """(image files in class order, their labels) of an image folder with one sub-folder per class."""
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
    if config.in_channels not in IMAGE_MODES:
        raise DataError(f"image folders need a 1- or 3-channel model, this one takes {config.in_channels}")
    files, labels = [], []
    for index, folder in enumerate(classes):
        label = int(folder.name) if numbered else index
        found = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(f"image folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, torch.tensor(labels)


IMAGE_MODES = {1: "L", 3: "RGB"}


@dataclass(frozen=True)
class ImageFiles:
    """Inputs of an image folder: each file decoded, and resized to the model's input, when its batch comes."""
    files: tuple[str, ...]
    channels: int
    img_size: int

    def __call__(self, indices: np.ndarray) -> torch.Tensor:
        return torch.stack([self.read(Path(self.files[i])) for i in indices]) if len(indices) else \
            torch.zeros(0, self.channels, self.img_size, self.img_size)

    def read(self, file: Path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        # an image is resized to the model's input: anything far larger is refused before it is decoded (a PNG can
        # declare gigapixels in a few bytes)
        max_pixels = max(MIN_PIXEL_LIMIT, 64 * self.img_size**2)
        try:
            with Image.open(file) as img:
                if img.width * img.height > max_pixels:
                    raise DataError(f"image {file} is {img.width}x{img.height}: more than {max_pixels:,} pixels "
                                    f"for a {self.img_size}x{self.img_size} model")
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    arr = np.asarray(img.convert(IMAGE_MODES[self.channels]), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise DataError(f"cannot read image {file}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        t = torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1).copy()).permute(2, 0, 1)
        return from_pixels(t[None], self.img_size)[0]


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
