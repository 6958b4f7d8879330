"""Write the Fashion-MNIST subset the tests use (tests/fixtures/fashion_mnist): the first 500 test and the first 256
training images with their labels, as gzipped IDX files like the originals (gzip mtime 0: byte-identical reruns).

    python scripts/make_fashion_subset.py [IDX_FOLDER]   # default: Debian's dataset-fashion-mnist location
"""
import gzip
import sys
from pathlib import Path

from spikformer_deploy.data.fashion_mnist import DEFAULT_ROOT, FILES, read_idx

SUBSET = {"test": 500, "train": 256}  # the 256 training images are what simulate and finetune calibrate on
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fashion_mnist"


def write_idx(path: Path, array) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + array.tobytes())


def main(root: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for split, n in SUBSET.items():
        for name, ndim in zip(FILES[split], (3, 1)):
            write_idx(OUT / name, read_idx(root / name, ndim)[:n])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROOT)
