"""What the commands read: the model (a checkpoint, a bundled model by name, or the default one), a netx network with
its frames, and the evaluation and calibration inputs — with the options that select them.

One option vocabulary: each shared option is made here, once, so that it has the same type, default and help in
every command (``tests/test_cli_options.py`` checks it):
- every command takes ``--json``;
- every command that reads data takes ``--data``, ``--samples``, ``--batch``;
- every command that calibrates or quantizes takes ``--calibration``, ``--calibration-data``, ``--weight-bits``,
  ``--input-bits``;
- every command that builds a model from a checkpoint takes ``--num-heads``, ``--T``, ``--img-size``;
- every command that builds the deploy graph a user runs, maps or exports (simulate, export, report) takes
  ``--chains``.
``sweep`` alone takes lists for ``--weight-bits`` and ``--T``: they are its axes (``SWEEP_AXES``).
"""
from __future__ import annotations

from pathlib import Path

import click

from .bundled import DEFAULT_MODEL, MODELS, bundled_model, bundled_split
from .errors import DeployError

DEFAULT_BATCH = 64
DEFAULT_CALIBRATION = 256  # inputs the quantizer calibrates on, in every command
SWEEP_AXES = ("--weight-bits", "--T")

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON on stdout).")
model_settings = (
    click.option("--num-heads", type=int, default=None,
                 help="Attention heads (imagenet/cifar10dvs checkpoints do not store it)."),
    click.option("--T", "T", type=int, default=None, help="Time steps (if not in the checkpoint)."),
    click.option("--img-size", type=int, default=None, help="Input image side (if not in the checkpoint)."),
)
data_options = (
    click.option("--data", type=click.Path(path_type=Path), default=None,
                 help="Inputs: an image folder (one sub-folder per class), .npz with x (and y), DVS frames "
                      "[N,T,2,H,W] .npy/.npz, or a netx network's frames. Default: the bundled model's data set "
                      "(the command's help says which split it reads)."),
    click.option("--samples", type=click.IntRange(1), default=None,
                 help="Read only the first N inputs (default: the command's own, see its help)."),
    click.option("--batch", type=click.IntRange(1), default=None,
                 help=f"Inputs per batch (default: {DEFAULT_BATCH}; training: the recipe's)."),
)
calibration_options = (
    click.option("--calibration", "calibration_samples", type=click.IntRange(1), default=DEFAULT_CALIBRATION,
                 show_default=True, help="Inputs the quantizer calibrates the integer ranges on (the first N)."),
    click.option("--calibration-data", type=click.Path(path_type=Path), default=None,
                 help="Calibrate on these inputs (formats as --data). Default: with --data, every 5th input of it "
                      "(held out from what is evaluated); else the bundled model's training split."),
)
bits_options = (
    click.option("--weight-bits", type=click.IntRange(2, 8), default=8, show_default=True,
                 help="Weight mantissa bits of the integer model."),
    click.option("--input-bits", type=click.IntRange(2, 8), default=8, show_default=True,
                 help="Bits of the integer model's input."),
)


# the forms of a chain of synapses (pipeline.CHAIN_FORMS, not imported: the CLI's help must not load torch)
chains_option = click.option(
    "--chains", type=click.Choice(["auto", "folded", "apart"]), default="auto", show_default=True,
    help="Chains of synapses with nothing between them (Meta-SpikeFormer's RepConv and SepConv): folded into one "
         "conv, kept apart on graded relay neurons, or auto: per chain the form with fewer Loihi 2 cores.")


attention_option = click.option(
    "--attention", type=click.Choice(["auto", "embedded", "neurocores"]), default=None,
    help="Where Spiking Self-Attention runs on Loihi 2: the embedded x86 cores, or neurocores (AND, count and "
         "product neurons on standard lava.proc processes); auto (the default for a checkpoint): neurocores where "
         "they fit the chip budget (--chips; else the embedded placement's chips). An export directory keeps its "
         "own.")


chips_option = click.option(
    "--chips", type=click.IntRange(1), default=None,
    help="Chips available: the report's verdict (does it fit?) and, with --attention auto, the attention's "
         "placement (neurocores where they fit).")


def options(*decorators):
    """Apply click decorators in the order written (click lists options in decoration order, bottom-up)."""
    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return apply


def model_options(func):
    """The checkpoint argument (a path, a bundled model's name, or nothing: the default bundled model) and the
    settings a checkpoint may not record."""
    func = options(*model_settings)(func)
    return click.argument("checkpoint", required=False, type=click.Path(path_type=Path))(func)


def batch_or_default(batch: int | None) -> int:
    return DEFAULT_BATCH if batch is None else batch


NETX_SUFFIX = ".net"  # lava-dl netx HDF5 networks


def is_netx(path: Path | None) -> bool:
    return path is not None and path.suffix == NETX_SUFFIX


def reject_netx_options(ctx, fixed: tuple[str, ...], what: str = "a netx network") -> None:
    """Options in ``fixed`` make no sense for ``what`` (its integers are given): given on the command line, they are
    an error."""
    from click.core import ParameterSource

    for name in fixed:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            flag = next(p.opts[0] for p in ctx.command.params if p.name == name)
            raise DeployError(f"{flag} does not apply to {what} (its integers are given)")


def netx_graph_and_frames(ctx, path: Path, T, data, fixed: tuple[str, ...]):
    """A netx network's integer graph and the frames of ``--data``; options in ``fixed`` make no sense for it."""
    from .data import load_frames
    from .frontends import read_netx

    reject_netx_options(ctx, fixed)
    if data is None:
        raise DeployError("a netx network needs --data: its input frames (.npy/.npz)")
    graph = read_netx(path, steps=T)
    return graph, load_frames(data, graph.input.op.shape)


def checkpoint_path(checkpoint: Path | None) -> Path:
    """The file a checkpoint argument names: a path, else a bundled model's name, else (none given) the default."""
    if checkpoint is None:
        return bundled_model(DEFAULT_MODEL)
    if not checkpoint.exists():
        if str(checkpoint) in MODELS:
            return bundled_model(str(checkpoint))
        if not checkpoint.suffix and len(checkpoint.parts) == 1:  # meant as a name
            raise DeployError(f"no checkpoint {checkpoint} here, and no bundled model of that name (bundled: "
                              f"{', '.join(MODELS)})")
    return checkpoint


def load_model(checkpoint: Path | None, num_heads, T, img_size):
    from .model import load_checkpoint

    path = checkpoint_path(checkpoint)
    return path, load_checkpoint(path, num_heads=num_heads, T=T, img_size=img_size)


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
