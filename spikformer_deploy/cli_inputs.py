"""What the commands read: the model (a checkpoint, or the bundled one), a netx network with its frames, and the
evaluation and calibration inputs — with the options that select them."""
from __future__ import annotations

from pathlib import Path

import click

from .errors import DeployError

MODELS = Path(__file__).resolve().parent.parent / "models"
BUNDLED_MODEL = MODELS / "spikformer_digits.pth"  # the default of every command
# fashion-mnist: train writes the float model, which `finetune` turns into the bundled spikformer_fmnist.pth
BUNDLED_MODELS = {"digits": BUNDLED_MODEL, "fashion-mnist": MODELS / "spikformer_fmnist_float.pth"}


def model_options(func):
    """Options for checkpoints that do not record every architecture setting."""
    func = click.option("--img-size", type=int, default=None, help="Input image side (if not in the checkpoint).")(func)
    func = click.option("--T", "T", type=int, default=None, help="Time steps (if not in the checkpoint).")(func)
    func = click.option("--num-heads", type=int, default=None,
                        help="Attention heads (imagenet/cifar10dvs checkpoints do not store it).")(func)
    return click.argument("checkpoint", required=False, type=click.Path(path_type=Path))(func)


NETX_SUFFIX = ".net"  # lava-dl netx HDF5 networks


def is_netx(path: Path | None) -> bool:
    return path is not None and path.suffix == NETX_SUFFIX


def reject_netx_options(ctx, fixed: tuple[str, ...]) -> None:
    """Options in ``fixed`` make no sense for a netx network: given on the command line, they are an error."""
    from click.core import ParameterSource

    for name in fixed:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            raise DeployError(f"--{name.replace('_', '-')} does not apply to a netx network (its integers are given)")


def netx_graph_and_frames(ctx, path: Path, T, data, fixed: tuple[str, ...]):
    """A netx network's integer graph and the frames of ``--data``; options in ``fixed`` make no sense for it."""
    from .data import load_frames
    from .frontends import read_netx

    reject_netx_options(ctx, fixed)
    if data is None:
        raise DeployError("a netx network needs --data: its input frames (.npy/.npz)")
    graph = read_netx(path, steps=T)
    return graph, load_frames(data, graph.input.op.shape)


def load_model(checkpoint: Path | None, num_heads, T, img_size):
    from .model import load_checkpoint

    if checkpoint is None:
        if not BUNDLED_MODEL.exists():
            raise DeployError(f"no checkpoint given and the bundled model {BUNDLED_MODEL} is missing")
        checkpoint = BUNDLED_MODEL
    return checkpoint, load_checkpoint(checkpoint, num_heads=num_heads, T=T, img_size=img_size)


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


def select_inputs(config, data, dataset: dict, samples: int | None = None, synthetic: bool = True,
                  calibration_data: Path | None = None, hold_out: bool = False):
    """(inputs, labels or None, calibration inputs, description), the inputs as ``Inputs`` (read batch by batch:
    slice them for tensors): the user's ``--data``, calibrated on ``--calibration-data`` or — for commands that
    evaluate (``hold_out``) — on every 5th input of ``--data``, held out from the evaluation (calibration never looks
    at the images it is judged on); else the bundled data set's held-out test split (calibration on its training
    split); else seeded synthetic inputs (when ``synthetic``)."""
    import numpy as np
    import torch

    from .data import DIGITS_SOURCE, Inputs, open_data

    if calibration_data is not None and data is None:
        raise DeployError("--calibration-data goes with --data")
    if data is not None:
        x, y = open_data(data, config)
        if calibration_data is not None:
            x_cal, description = open_data(calibration_data, config)[0], f"{data} (calibrated on {calibration_data})"
        elif hold_out:
            if len(x) < 2:
                raise DeployError(f"data {data}: one input cannot be both calibrated on and evaluated; give "
                                  f"--calibration-data")
            held = np.arange(len(x)) % 5 == 0
            x_cal, x, y = x.subset(held), x.subset(~held), None if y is None else y[torch.from_numpy(~held)]
            description = f"{data} (every 5th input held out for calibration)"
        else:
            x_cal, description = x, str(data)
    elif dataset:
        x_cal, _, x, y = bundled_split(dataset, config.img_size)
        x_cal, x = Inputs.of(x_cal), Inputs.of(x)
        description = f"{'digits' if dataset['data'] == DIGITS_SOURCE else 'Fashion-MNIST'} test split (held out)"
    elif synthetic:
        x = torch.rand(config.input_shape(batch=samples or 2), generator=torch.Generator().manual_seed(0))
        if config.variant == "cifar10dvs":
            x = (x < 0.1).float()
        x_cal = x = Inputs.of(x)
        y = None
        description = "synthetic inputs (uniform images / 10 % events): rates and ranges are only indicative"
    else:
        raise DeployError("this checkpoint has no bundled data set: give --data (image folder, .npz or .npy)")
    if samples is not None:
        x, y = x.subset(slice(samples)), None if y is None else y[:samples]
    return x, y, x_cal, description


def int_list(text: str, option: str, lo: int, hi: int) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise DeployError(f"{option}: expected comma-separated integers, got {text!r}") from None
    bad = [v for v in values if not lo <= v <= hi]
    if not values or bad:
        raise DeployError(f"{option}: {bad[0] if bad else 'nothing'} is not in {lo}..{hi}")
    return values


def artifact_inputs(graph, manifest: dict, data, samples: int | None):
    """(inputs, description) for an artifact: frames from ``--data`` for an exported netx network (its manifest
    names no model configuration), else the model's data as ``select_inputs`` chooses it."""
    from .data import load_frames
    from .model import SpikformerConfig

    source = manifest.get("source", {})
    if "netx" in source:
        if data is None:
            raise DeployError(f"this artifact holds the netx network {source['netx']}: give its frames with --data")
        x = load_frames(data, graph.input.op.shape)[:samples]
        return x, f"{len(x)} frames of {data}"
    x, _, _, description = select_inputs(SpikformerConfig.from_dict(manifest["config"]), data,
                                         source.get("dataset", {}), samples, hold_out=True)
    return x[:], description
