"""Command-line interface. Only this module knows about click and rich; errors become one line and an exit code."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import DeployError

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "models" / "spikformer_digits.pth"


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def model_options(func):
    """Options for checkpoints that do not record every architecture setting."""
    func = click.option("--img-size", type=int, default=None, help="Input image side (if not in the checkpoint).")(func)
    func = click.option("--T", "T", type=int, default=None, help="Time steps (if not in the checkpoint).")(func)
    func = click.option("--num-heads", type=int, default=None,
                        help="Attention heads (imagenet/cifar10dvs checkpoints do not store it).")(func)
    return click.argument("checkpoint", required=False, type=click.Path(path_type=Path))(func)


def load_model(checkpoint: Path | None, num_heads, T, img_size):
    from .model import load_checkpoint

    if checkpoint is None:
        if not BUNDLED_MODEL.exists():
            raise DeployError(f"no checkpoint given and the bundled model {BUNDLED_MODEL} is missing")
        checkpoint = BUNDLED_MODEL
    return checkpoint, load_checkpoint(checkpoint, num_heads=num_heads, T=T, img_size=img_size)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spikformer-deploy")
def cli():
    """Deploy a trained Spikformer to neuromorphic hardware (Loihi 2 / Lava, NIR, ONNX).

    Commands take a checkpoint path; without one they use the bundled digits model.
    """


@cli.command()
@model_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(checkpoint, num_heads, T, img_size, as_json):
    """Variant, configuration, parameter count, T and input shape of a checkpoint."""
    from .model import parameter_count

    path, model = load_model(checkpoint, num_heads, T, img_size)
    cfg = model.config
    shape = list(cfg.input_shape(batch=1))
    data = {"checkpoint": str(path), "variant": cfg.variant, "config": cfg.to_dict(),
            "parameters": parameter_count(model), "T": cfg.T, "num_tokens": cfg.num_tokens,
            "input_shape": ["B", *shape[1:]],
            "input": "event frames [B, T, C, H, W]" if cfg.variant == "cifar10dvs"
            else f"image [B, C, H, W] repeated T = {cfg.T} times"}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Spikformer {cfg.depth}-{cfg.dim} ({cfg.variant})", show_header=False)
    for key, value in (("checkpoint", str(path)), ("variant", cfg.variant), ("blocks", cfg.depth),
                       ("dim", cfg.dim), ("heads", f"{cfg.num_heads} (head dim {cfg.head_dim})"),
                       ("MLP hidden", f"{cfg.hidden_dim} (ratio {cfg.mlp_ratio})"), ("classes", cfg.num_classes),
                       ("time steps T", cfg.T), ("tokens", f"{cfg.num_tokens} ({cfg.grid}x{cfg.grid})"),
                       ("input", f"{data['input']}, shape {data['input_shape']}"),
                       ("parameters", f"{data['parameters']:,}")):
        table.add_row(key, str(value))
    _console().print(table)


@cli.command()
@click.option("-o", "--out", type=click.Path(path_type=Path), default=BUNDLED_MODEL, show_default=True,
              help="Where to write the trained checkpoint (its model card goes next to it).")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the bundled model's).")
@click.option("--seed", type=int, default=0, show_default=True)
def train(out, epochs, seed):
    """Train the bundled default model: a small Spikformer on scikit-learn's digits (offline, deterministic)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .model import save_checkpoint
    from .train import DigitsTraining, train_digits, write_model_card

    settings = DigitsTraining(seed=seed) if epochs is None else DigitsTraining(seed=seed, epochs=epochs)
    columns = (TextColumn("training"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    with Progress(*columns, console=_console(stderr=True)) as bar:
        task = bar.add_task("train", total=settings.epochs, loss=float("nan"))
        model, report = train_digits(settings, progress=lambda e, n, loss: bar.update(task, completed=e, loss=loss))
    save_checkpoint(model, out, meta=report)
    card = write_model_card(out, model.config, report)
    click.echo(f"test accuracy {report['test_accuracy']:.2%} ({report['split']['test']} held-out images), "
               f"trained in {report['training_seconds']} s; wrote {out} and {card}")


def main(argv=None) -> int:
    try:
        rc = cli.main(args=argv, prog_name="spikformer-deploy", standalone_mode=False)
    except DeployError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
