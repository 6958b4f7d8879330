"""What the package ships, as package data found through ``importlib.resources`` (an installed wheel reads the same
files as a checkout): the bundled models by name, the hardware profiles, the calibration packs, and the data set a
bundled model was trained on."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import DeployError

# name -> file in resources/models (each has a model card beside it, <stem>.md)
MODELS = {"digits": "spikformer_digits.pth", "fmnist": "spikformer_fmnist.pth",
          "fmnist-float": "spikformer_fmnist_float.pth"}
DEFAULT_MODEL = "digits"  # what every command runs without a checkpoint


def resource(*parts: str) -> Path:
    """The path of package data ``resources/<parts>``. Our readers (torch, h5py, Lava) need real files, which every
    unpacked install (wheel, editable, checkout) has."""
    path = resources.files(__package__).joinpath("resources", *parts)
    if not isinstance(path, Path):
        raise DeployError(f"spikformer-deploy's package data ({'/'.join(parts)}) is inside an archive; install the "
                          f"package unpacked (pip install)")
    return path


def bundled_model(name: str = DEFAULT_MODEL) -> Path:
    """The checkpoint of a bundled model: ``digits`` (the default), ``fmnist`` (fine-tuned for 8 bits) or
    ``fmnist-float`` (its float original)."""
    if name not in MODELS:
        raise DeployError(f"unknown bundled model {name!r}; bundled: {', '.join(MODELS)}")
    path = resource("models", MODELS[name])
    if not path.is_file():
        raise DeployError(f"the bundled model {name} ({path}) is missing: the installation is incomplete")
    return path


def bundled_models() -> dict[str, Path]:
    """Every bundled model by name."""
    return {name: bundled_model(name) for name in MODELS}


def bundled_dataset(model) -> dict:
    """The bundled data set a checkpoint was trained on (our own format records it), or {}."""
    from .data import DIGITS_SOURCE, FASHION_MNIST_SOURCE

    meta = getattr(model, "source", {}).get("meta", {})
    if meta.get("data") == DIGITS_SOURCE:
        return {"data": DIGITS_SOURCE, "split_seed": meta["split"]["seed"]}
    return {"data": FASHION_MNIST_SOURCE} if meta.get("data") == FASHION_MNIST_SOURCE else {}


def bundled_split(dataset: dict, img_size: int):
    """(x_train, y_train, x_test, y_test) of a data set ``bundled_dataset`` names."""
    from .data import DIGITS_SOURCE, digits_split, fashion_mnist

    if dataset["data"] == DIGITS_SOURCE:
        return digits_split(img_size, seed=dataset["split_seed"])
    return (*fashion_mnist("train", img_size), *fashion_mnist("test", img_size))
