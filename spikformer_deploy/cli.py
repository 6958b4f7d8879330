"""Command-line interface. Only the cli modules know about click and rich (``cli_inputs``: what commands read,
``cli_render``: terminal output); errors become one line and an exit code."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .bundled import bundled_dataset, bundled_split
from .cli_inputs import (artifact_inputs, attention_option, batch_or_default, bits_options, calibration_options,
                         chains_option, chips_option,
                         data_options, int_list,
                         is_netx, json_option, load_model, model_options, model_settings, netx_graph_and_frames,
                         options, reject_netx_options, select_inputs)
from .cli_render import console_for, epoch_progress, print_conventions, print_energy, print_simulation, progress
from .errors import DeployError, Terminated
from .outputs import check_dir_target, check_file_target, handle_termination, write_files_atomically


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spikformer-deploy")
def cli():
    """Deploy a trained Spikformer to neuromorphic hardware (Loihi 2 / Lava, NIR, ONNX).

    Commands take a checkpoint path or a bundled model's name (digits, fmnist, fmnist-float); without one they
    use the bundled digits model. info, simulate, export and report also take a lava-dl netx network (*.net),
    with its frames in --data.
    """


@cli.command()
@model_options
@json_option
def info(checkpoint, num_heads, T, img_size, as_json):
    """Variant, configuration, parameter count, T and input shape of a checkpoint (or the layers of a netx
    network)."""
    from .model import parameter_count

    if is_netx(checkpoint):
        _netx_info(checkpoint, T, as_json)
        return
    path, model = load_model(checkpoint, num_heads, T, img_size)
    cfg = model.config
    shape = list(cfg.input_shape(batch=1))
    data = {"checkpoint": str(path), "member": cfg.member, "model": cfg.title, "variant": cfg.variant,
            "config": cfg.to_dict(),
            "parameters": parameter_count(model), "T": cfg.T, "num_tokens": cfg.num_tokens,
            "input_shape": ["B", *shape[1:]],
            "input": "event frames [B, T, C, H, W]" if cfg.variant == "cifar10dvs"
            else f"image [B, C, H, W] repeated T = {cfg.T} times"}
    if "kd_head" in model.source:
        data["distillation_head"] = model.source["kd_head"]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{cfg.title} {cfg.depth}-{cfg.dim} ({cfg.variant})", show_header=False)
    for key, value in (("checkpoint", str(path)), ("model", cfg.title), ("variant", cfg.variant),
                       *((("pooling_stat", cfg.pooling),) if cfg.pooling else ()),
                       *((("stage widths", " / ".join(map(str, cfg.embed_dims))),) if cfg.embed_dims else ()),
                       *((("distillation head", data["distillation_head"]),) if "distillation_head" in data else ()),
                       ("blocks", cfg.depth),
                       ("dim", cfg.dim), ("heads", f"{cfg.num_heads} (head dim {cfg.head_dim})"),
                       ("MLP hidden", f"{cfg.hidden_dim} (ratio {cfg.mlp_ratio})"), ("classes", cfg.num_classes),
                       ("time steps T", cfg.T), ("tokens", f"{cfg.num_tokens} ({cfg.grid}x{cfg.grid})"),
                       ("input", f"{data['input']}, shape {data['input_shape']}"),
                       ("parameters", f"{data['parameters']:,}")):
        table.add_row(key, str(value))
    console_for().print(table)


def _netx_info(path: Path, T, as_json: bool) -> None:
    """The neuron groups of a netx network as the deploy graph holds them."""
    import numpy as np

    from .frontends import read_netx

    graph = read_netx(path, steps=T)
    layers = [{"name": n.name, "shape": list(n.shape), "neurons": int(np.prod(n.shape)),
               "synapses_from": n.inputs[0], "vth": n.op.vth, "du": n.op.du, "dv": n.op.dv}
              for n in graph.having("neuron_group")]
    data = {"network": str(path), "format": "lava-dl netx", "T": graph.steps, "input_shape": list(graph.input.shape),
            "neurons": sum(layer["neurons"] for layer in layers),
            "weights": int(sum(n.op.weight.size for n in graph.having("synapse"))), "layers": layers}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{path.name} (lava-dl netx): {data['neurons']:,} neurons, {data['weights']:,} weights, "
                        f"T = {data['T']}, input {data['input_shape']}")
    for col in ("layer", "shape", "neurons", "vth", "du", "dv"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for layer in layers:
        table.add_row(layer["name"], str(layer["shape"]), f"{layer['neurons']:,}", str(layer["vth"]),
                      str(layer["du"]), str(layer["dv"]))
    console_for().print(table)


@cli.command()
@click.option("--dataset", type=click.Choice(["digits", "fashion-mnist"]), default="digits", show_default=True,
              help="digits: the bundled default model; fashion-mnist: the deeper bundled model (needs the IDX files).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Folder of the Fashion-MNIST IDX files (default: where Debian's dataset-fashion-mnist puts them).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the trained checkpoint (its model card goes next to it). Default: "
                   "./<the bundled file's name>.")
@click.option("--epochs", type=int, default=None, help="Training epochs (default: the bundled model's).")
@click.option("--seed", type=int, default=0, show_default=True)
@options(*data_options, json_option)
def train(dataset, data_root, out, epochs, seed, data, samples, batch, as_json):
    """Train a bundled model's recipe from scratch (offline, deterministic): a small Spikformer on scikit-learn's
    digits, or a 2-block, 128-wide one on Fashion-MNIST.

    --data trains the recipe on your labelled images instead (every 5th held out as the test split); --samples
    trains on the first N training inputs."""
    import dataclasses

    from .bundled import MODELS
    from .model import save_checkpoint
    from .train import RECIPES, train as run_training, write_model_card

    if data is not None and data_root is not None:
        raise DeployError("--data-root locates the bundled Fashion-MNIST files; it does not go with --data")
    recipe = dataclasses.replace(RECIPES[dataset], seed=seed, **({} if epochs is None else {"epochs": epochs}),
                                 **({} if batch is None else {"batch_size": batch}))
    out = out or Path(MODELS["digits" if dataset == "digits" else "fmnist-float"])
    check_file_target(out, "checkpoint")
    with epoch_progress(recipe.epochs, quiet=as_json) as advance:
        model, report = run_training(recipe, progress=advance, root=data_root, data=data, samples=samples)
    save_checkpoint(model, out, meta=report)
    command = " ".join(["spikformer-deploy train", *([] if dataset == "digits" else [f"--dataset {dataset}"]),
                        *([f"--data {data}"] if data else []), *([f"--samples {samples}"] if samples else []),
                        *([f"--epochs {epochs}"] if epochs else []), *([f"--batch {batch}"] if batch else []),
                        *([f"--seed {seed}"] if seed else [])])
    card = write_model_card(out, model.config, report, command)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(out), "card": str(card), **report}, indent=2))
        return
    click.echo(f"test accuracy {report['test_accuracy']:.2%} ({report['split']['test']} held-out images), "
               f"trained in {report['training_seconds']} s; wrote {out} and {card}")


@cli.command()
@model_options
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Where to write the fine-tuned checkpoint (its model card goes next to it).")
@click.option("--epochs", type=click.IntRange(0), default=1, show_default=True,
              help="Epochs on the deploy grid (0: only snap the weights onto it).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@options(*data_options, *calibration_options, *bits_options, json_option)
def finetune(checkpoint, num_heads, T, img_size, out, epochs, lr, seed, data, samples, batch, calibration_samples,
             calibration_data, weight_bits, input_bits, as_json):
    """Quantization-aware fine-tuning: train on the Loihi 2 deploy grid (weights rounded as the integer model holds
    them, straight-through gradients), then snap the weights onto it, so that the exported integer model takes the
    float model's decisions.

    --data: labelled training data (default: the bundled model's training split); --samples: train on its first N
    inputs. The grid is the one the quantizer finds on the calibration inputs (default: the first 256 training
    inputs). With the bundled data set, the float and integer test accuracy are measured after."""
    from .data import load_data
    from .finetune import FinetuneRecipe, finetune as run_finetune, write_finetune_card
    from .model import save_checkpoint
    from .train import accuracy

    check_file_target(out, "checkpoint")
    path, model = load_model(checkpoint, num_heads, T, img_size)
    dataset = bundled_dataset(model)
    if data is not None:
        x, y = load_data(data, model.config)
        if y is None:
            raise DeployError(f"data {data} has no labels: fine-tuning needs them")
        x_test = y_test = None
    elif dataset:
        if calibration_data is not None:
            raise DeployError("--calibration-data goes with --data")
        x, y, x_test, y_test = bundled_split(dataset, model.config.img_size)
    else:
        raise DeployError("this checkpoint has no bundled data set: give its training data with --data")
    x, y = x[:samples], y[:samples]
    x_cal = x if calibration_data is None else load_data(calibration_data, model.config)[0]
    recipe = FinetuneRecipe(epochs=epochs, lr=lr, weight_bits=weight_bits, calibration=calibration_samples,
                            seed=seed, **({} if batch is None else {"batch_size": batch}))
    before = accuracy(model, x_test, y_test) if x_test is not None else None
    with epoch_progress(epochs, "fine-tuning", quiet=as_json) as advance:
        report = run_finetune(model, x, y, recipe, progress=advance, calibration_x=x_cal)
    meta = {**model.source["meta"], "finetune": {**report, "source": str(path)}}
    if before is not None:
        meta.update(test_accuracy_before_finetune=before, **_deployed_accuracy(
            model, x_cal[:calibration_samples], x_test, y_test, weight_bits, input_bits))
    save_checkpoint(model, out, meta=meta)
    command = " ".join([f"spikformer-deploy finetune {path} -o {out}", *([] if epochs == 1 else [f"--epochs {epochs}"]),
                        *([f"--batch {batch}"] if batch else []), *([f"--samples {samples}"] if samples else [])])
    card = write_finetune_card(out, meta, command)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(out), "card": str(card), **meta}, indent=2, default=str))
        return
    after = f"; test accuracy {before:.2%} -> {meta['test_accuracy']:.2%}" if before is not None else ""
    click.echo(f"fine-tuned {report['weights']:,} weights in {report['seconds']} s{after}; wrote {out} and {card}")


@cli.command()
@model_options
@options(*data_options, *calibration_options, *bits_options, chains_option, attention_option, chips_option)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--energy", is_flag=True, help="Energy per inference per layer for each hardware profile.")
@click.option("--profile", "profiles", multiple=True,
              help="Hardware profile: a built-in name (loihi2, loihi, h200_sxm, cmos45nm, ...) or a YAML file; "
                   "repeatable. Default: every built-in profile.")
@click.option("--plot", "plot_dir", type=click.Path(path_type=Path), default=None,
              help="With --energy: write a per-layer energy PNG per profile into this directory.")
@click.option("--gpu-seconds", type=click.FloatRange(0.5), default=5.0, show_default=True,
              help="With --energy and CUDA: length of the measured GPU run.")
@click.option("--ray-address", default=None,
              help="Run shards of the data as tasks on this Ray cluster (auto | HOST:PORT; needs the 'distributed' "
                   "extra). The totals equal a local run's bit for bit.")
@click.option("--shard-batches", type=click.IntRange(1), default=4, show_default=True,
              help="With --ray-address: batches per task.")
@click.option("--record", "record", default=None, metavar="NODE[,NODE...]",
              help="Integer-graph nodes whose per-step outputs (spikes or graded values; u and v for neurons) to write "
                   "to --record-out, on the simulator's time axis (verify aligns Lava to it).")
@click.option("--record-out", type=click.Path(path_type=Path), default=None,
              help="With --record: the .npz file the traces go to.")
@json_option
@click.pass_context
def simulate(ctx, checkpoint, num_heads, T, img_size, data, samples, batch, calibration_samples, calibration_data,
             weight_bits, input_bits, chains, attention, chips, device, energy, profiles, plot_dir, gpu_seconds,
             ray_address, shard_batches, record, record_out, as_json):
    """Run the float and the integer (Loihi 2) model side by side: accuracy, agreement, per-layer counts.

    --data: the inputs to evaluate (default: the bundled model's held-out test split, all of it; --samples: the
    first N). A netx network (*.net) runs as given (integer only) on the frames of --data."""
    import torch

    from . import api
    from .passes import attention_placement

    if (profiles or plot_dir) and not energy:
        raise DeployError("--profile and --plot need --energy")
    if plot_dir is not None:
        check_dir_target(plot_dir, "plots into")
    if (record is None) != (record_out is None):
        raise DeployError("--record and --record-out go together")
    traces = tuple(dict.fromkeys(n.strip() for n in record.split(",") if n.strip())) if record else ()
    if record is not None and not traces:
        raise DeployError("--record names no node")
    if record_out is not None:
        check_file_target(record_out, "the traces")
    profile_list = api.profiles(profiles) if energy else []
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise DeployError("--device cuda: CUDA is not available here")
    batch = batch_or_default(batch)
    if is_netx(checkpoint):
        path, model, y, data_name = checkpoint, None, None, str(data)
        source, x = netx_graph_and_frames(ctx, checkpoint, T, data, (
            "num_heads", "img_size", "weight_bits", "input_bits", "calibration_samples", "calibration_data", "chains",
            "attention", "chips"))
        x, x_cal = x[:samples], x[:0]
    else:
        path, source = load_model(checkpoint, num_heads, T, img_size)
        model = source
        x, y, x_cal, data_name = select_inputs(model.config, data, bundled_dataset(model), samples, synthetic=False,
                                               calibration_data=calibration_data, hold_out=True)
        x_cal = x_cal[:calibration_samples]
    with progress("simulating", quiet=as_json) as bar:
        task = bar.add_task("simulate", total=len(x))
        run = api.simulate(source, x, y, calibration_x=x_cal, weight_bits=weight_bits, input_bits=input_bits,
                           chains=chains, batch=batch, device=device, ray_address=ray_address,
                           attention=attention or "auto", chips=chips, record=traces,
                           shard_batches=shard_batches,
                           progress=lambda done: bar.update(task, completed=done))
    summary = {"checkpoint": str(path), "data": data_name, "samples": run.samples, "device": device,
               "weight_bits": max((n.op.weight_bits or 8 for n in run.graph.having("synapse")), default=8),
               "input_bits": run.graph.input.op.bits, "calibration_samples": len(x_cal),
               "attention": attention_placement(run.graph), **run.scores}
    energy_report = _energy(model, run, profile_list, x, gpu_seconds, plot_dir) if energy else None
    if traces:
        summary["record"] = _write_traces(record_out, run)
    if as_json:
        click.echo(json.dumps({**summary, "totals_per_inference": run.totals(),
                               "layers": [r.to_dict() for r in run.rows],
                               **({"energy": energy_report} if energy_report else {})}, indent=2))
        return
    print_simulation(summary, run.rows, run.totals())
    if energy_report:
        print_energy(energy_report)
        print_conventions(energy_report["counting_conventions"])


def _write_traces(path: Path, run) -> dict:
    """The traces as one .npz (atomically): one array per node output and neuron state, and ``meta``, a JSON
    string that says what each array is."""
    import numpy as np

    from .ir.ops import LoihiLIF

    graph = run.graph
    meta = {"time_axis": "[T, inputs, ...]: step t of input b as the layer-synchronous simulator computes it; Lava "
                         "holds a node's step t of input b at step depth + b * T + t (verify aligns Lava so)",
            "depths": {name: depth for name, depth in graph.pipeline_depths().items()
                       if name in run.traces or name + ".v" in run.traces},
            "arrays": {}}
    for name, value in run.traces.items():
        node = graph.nodes[name if name in graph.nodes else name.rsplit(".", 1)[0]]
        layout = "[T, inputs, C, H, W]" if len(node.shape) == 3 else "[T, inputs, N, C]" if len(node.shape) == 2 \
            else "[1, inputs, classes]: the integer logits, once after the last step"
        what = ("binary spikes" if node.op.spiking else "integer values") if name in graph.nodes else \
            "u (24-bit current) after the step" if name.endswith(".u") else \
            "v (24-bit voltage) after the step, 0 where it fired"
        entry = {"node": node.name, "op": node.op.type, "layout": layout, "values": what}
        if isinstance(node.op, LoihiLIF):
            entry["v_per_float_V"] = node.op.scale  # integer v per unit of the float model's V
        meta["arrays"][name] = entry
    write_files_atomically(path.parent if str(path.parent) else Path("."), {path.name: lambda p: _save_npz(
        p, {**run.traces, "meta": np.array(json.dumps(meta, sort_keys=True))})})
    return {"file": str(path), "arrays": {k: list(v.shape) for k, v in run.traces.items()}}


def _save_npz(path: Path, arrays: dict) -> None:
    import numpy as np

    with open(path, "wb") as f:  # a file object: np.savez would add .npz to a bare name
        np.savez(f, **arrays)


def _deployed_accuracy(model, x_cal, x, y, weight_bits: int, input_bits: int) -> dict:
    """Float and integer top-1 on a test split, with their agreement (what a model card states)."""
    from .api import simulate

    scores = simulate(model, x, y, calibration_x=x_cal, weight_bits=weight_bits, input_bits=input_bits).scores
    return {"test_accuracy": scores["float_accuracy"], "integer_test_accuracy": scores["int_accuracy"],
            "integer_weight_bits": weight_bits, "test_agreement": scores["agreement"],
            "test_min_spike_agreement": min(scores["spike_agreement"].values())}


def _energy(model, run, profiles, x, gpu_seconds, plot_dir) -> dict:
    """Estimates for every profile, the measured GPU reference where CUDA is present, and the optional plots."""
    from .analysis.plots import energy_breakdown_png
    from .api import counting_conventions, energy
    from .gpu_measure import GpuMeasurementUnavailable, measure_float_reference

    estimates = energy(run, profiles)
    per_op = next((p for p in profiles if p.model == "per_op"), "cmos45nm")
    try:
        if model is None:
            raise GpuMeasurementUnavailable("no float model to run on the GPU (a netx network is integer only)")
        # batch 1 (latency-bound) and the throughput batch of the analytic model, each beside its estimate
        batches = sorted({1, *(int(p["throughput_batch"]) for p in profiles if p.model == "gpu")})
        measured = {"kind": "measured", "runs": [measure_float_reference(model, x, batch=b, seconds=gpu_seconds)
                                                 for b in batches]}
    except GpuMeasurementUnavailable as exc:
        measured = {"kind": "unavailable", "reason": str(exc)}
    written = []
    if plot_dir is not None:
        written = write_files_atomically(plot_dir, {f"energy_{e.profile}_{e.convention}.png":
                                               (lambda p, e=e: energy_breakdown_png(e, p)) for e in estimates})
    return {"profiles": {p.name: p.to_dict() for p in profiles}, "estimates": [e.to_dict() for e in estimates],
            "counting_conventions": counting_conventions(run, per_op), "gpu_measured": measured, "plots": written}


@cli.command("export")
@model_options
@click.option("--target", "target", default="all", show_default=True,
              help="loihi2, nir, onnx or all (several: comma-separated).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Artifact directory (default: ./<checkpoint name>.deploy).")
@options(*data_options, *calibration_options, *bits_options, chains_option, attention_option, chips_option)
@click.option("--nir-weights", type=click.Choice(["float", "grid"]), default="float", show_default=True,
              help="model.nir's weights: the float model's (float64, exact), or the deployed 8-bit grid's (int8 "
                   "mantissas and a step per layer: 8x smaller).")
@click.option("--force", is_flag=True, help="Replace an existing non-empty output directory.")
@json_option
@click.pass_context
def export_cmd(ctx, checkpoint, num_heads, T, img_size, target, out, data, samples, batch, calibration_samples,
               calibration_data, weight_bits, input_bits, chains, attention, chips, nir_weights, force, as_json):
    """Write an artifact directory: integer IR, target files (Lava/netx, NIR, ONNX) and a manifest.

    The quantizer calibrates on --calibration-data or --data (one of them; default: the bundled model's training
    split): its first --calibration inputs (--samples caps them too). A netx network (*.net) is exported as given:
    its integer graph for Lava (verify then needs its frames)."""
    from .artifact import sha256
    from .export import export, export_integer_graph, targets

    if is_netx(checkpoint):
        from .frontends import read_netx

        reject_netx_options(ctx, ("num_heads", "img_size", "data", "samples", "batch", "calibration_samples",
                                  "calibration_data", "weight_bits", "input_bits", "chains", "attention",
                                  "chips", "nir_weights"))
        if target not in ("all", "loihi2"):
            raise DeployError(f"--target {target} does not apply to a netx network (Lava is its only target)")
        out = out or Path(f"{checkpoint.stem}.deploy")
        manifest = export_integer_graph(read_netx(checkpoint, steps=T), out, force,
                                        source={"netx": checkpoint.name, "sha256": sha256(checkpoint)})
        click.echo(json.dumps(manifest, indent=2) if as_json else f"wrote {out}: {', '.join(manifest['files'])}")
        return
    if data is not None and calibration_data is not None:
        raise DeployError("export reads one set of inputs, to calibrate on: give --data or --calibration-data")
    names = targets() if target == "all" else [t.strip() for t in target.split(",") if t.strip()]
    path, model = load_model(checkpoint, num_heads, T, img_size)
    _, _, x_cal, _ = select_inputs(model.config, calibration_data or data, bundled_dataset(model), synthetic=False)
    out = out or Path(f"{path.stem.split('.')[0]}.deploy")
    with progress("exporting", quiet=as_json) as bar:
        bar.add_task("export", total=None)
        manifest = export(model, out, names, x_cal[:min(calibration_samples, samples or calibration_samples)],
                          weight_bits, input_bits, force,
                          source={"checkpoint": path.name, "sha256": sha256(path), "layout": model.source["layout"],
                                  "dataset": bundled_dataset(model)}, nir_weights=nir_weights,
                          batch_size=batch_or_default(batch), chains=chains, attention=attention or "auto",
                          chips=chips)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
    else:
        click.echo(f"wrote {out}: {', '.join(manifest['files'])}")


@cli.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@options(*model_settings)
@click.option("--target", type=click.Choice(["loihi2", "loihi"]), default="loihi2", show_default=True)
@chips_option
@click.option("--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md", show_default=True,
              help="The report's file format (-o; without it, printed).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Write the report here (the .md and .json versions are always written beside it).")
@options(*data_options, *calibration_options, *bits_options, chains_option, attention_option, json_option)
@click.pass_context
def report(ctx, source, num_heads, T, img_size, target, chips, fmt, out, data, samples, batch, calibration_samples,
           calibration_data, weight_bits, input_bits, chains, attention, as_json):
    """Hardware feasibility report for a checkpoint (or bundled model name), an export directory or a netx network
    (*.net, with its frames in --data): cores, chips, limits, verdict.

    Firing rates and state ranges come from --data (default: the bundled model's test split, or synthetic inputs
    for other models): its first 64 inputs unless --samples. A checkpoint is quantized as export does it; an export
    directory and a netx network hold their integers already. --json prints the report as JSON (with -o too)."""
    from . import api
    from .analysis.report import json_safe, to_html, to_markdown
    from .artifact import load_artifact
    from .passes import attention_placement
    from .pipeline import integer_graph

    if out is not None:  # before the simulation: the report and its .md/.json siblings
        for path in {out, out.with_suffix(".md"), out.with_suffix(".json")}:
            check_file_target(path, "the report")
    quantizing = ("calibration_samples", "calibration_data", "weight_bits", "input_bits", "chains")
    placement = attention or "auto"
    batch = batch_or_default(batch)
    if is_netx(source):
        graph, x = netx_graph_and_frames(ctx, source, T, data, ("num_heads", "img_size", "attention", *quantizing))
        x = x[:samples]
        note = f"{len(x)} frames of {data}"
    else:
        if source is not None and source.is_dir():
            reject_netx_options(ctx, ("num_heads", "T", "img_size", *quantizing), "an export directory")
            graph, manifest = load_artifact(source)
            x, description = artifact_inputs(graph, manifest, data, samples or 64)
            placement = attention or attention_placement(graph) or "auto"  # as exported, unless asked
        else:
            _, model = load_model(source, num_heads, T, img_size)
            dataset = bundled_dataset(model)
            x, _, x_cal, description = select_inputs(model.config, data, dataset, samples or (
                64 if data is not None or dataset else 2), calibration_data=calibration_data, hold_out=True)
            graph = integer_graph(model, x_cal[:calibration_samples], weight_bits, input_bits, batch, chains)
            x = x[:]
        note = f"{len(x)} inputs of {description}"
    result = api.feasibility_report(graph, x, target, chips, note, batch, placement, "asked for (--attention)"
                                    if attention else "the placement it was exported with")
    texts = {"md": to_markdown(result), "json": json.dumps(json_safe(result), indent=1) + "\n"}
    if fmt == "html":
        texts["html"] = to_html(result)
    if out is not None:
        files = {out.name: texts[fmt]}
        files.update({out.with_suffix(f".{k}").name: v for k, v in texts.items() if k in ("md", "json")})
        write_files_atomically(out.parent if str(out.parent) else Path("."),
                               {name: (lambda p, text=text: p.write_text(text)) for name, text in files.items()})
    if as_json or out is None:
        click.echo(texts["json" if as_json else fmt], nl=False)
        return
    click.echo(f"{result['verdict']['state']}: {result['totals']['cores']} cores, {result['totals']['chips']} "
               f"chip(s) ({result['totals']['system']}); wrote {', '.join(sorted(files))}")


@cli.command("sweep")
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path))
@options(model_settings[0], model_settings[2])
@click.option("--weight-bits", "bits", default="4,5,6,7,8", show_default=True,
              help="The sweep's axis: weight widths, comma-separated, 2..8.")
@click.option("--T", "steps", default=None,
              help="The sweep's axis: time steps, comma-separated (default: 1..the model's T).")
@options(*data_options, *calibration_options, bits_options[1], attention_option)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Points run in parallel processes.")
@click.option("--ray-address", default=None,
              help="Run the points as tasks on this Ray cluster instead (auto | HOST:PORT; the checkpoint path must "
                   "be readable on its nodes).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("out/sweep"), show_default=True)
@json_option
def sweep_cmd(checkpoint, num_heads, img_size, bits, steps, data, samples, batch, calibration_samples,
              calibration_data, input_bits, attention, workers, ray_address, out, as_json):
    """Accuracy / energy trade-off: the integer model per weight width and T; a table and a Pareto plot.

    --data: the inputs to evaluate (default: the bundled model's held-out test split, all of it; --samples: the
    first N)."""
    from .sweep import SweepJob, pareto, pareto_png, sweep, to_markdown

    check_dir_target(out, "the sweep into")
    bit_list = int_list(bits, "--weight-bits", 2, 8)
    path, model = load_model(checkpoint, num_heads, None, img_size)
    cfg = model.config
    # event frames hold at most the model's T steps; a repeated image can run for more
    step_list = int_list(steps, "--T", 1, cfg.T if cfg.variant == "cifar10dvs" else 64) if steps else \
        list(range(1, cfg.T + 1))
    x, y, x_cal, description = select_inputs(cfg, data, bundled_dataset(model), samples, synthetic=False,
                                             calibration_data=calibration_data, hold_out=True)
    overrides = {"num_heads": cfg.num_heads, "T": cfg.T, "img_size": cfg.img_size}
    jobs = [SweepJob(str(path), overrides, x_cal[:calibration_samples].numpy(), x,
                     None if y is None else y.numpy(), b, T, batch_or_default(batch), input_bits,
                     attention or "auto")
            for T in step_list for b in bit_list]
    with progress("sweep points", quiet=as_json) as bar:
        task = bar.add_task("sweep", total=len(jobs))
        points = sweep(jobs, workers, progress=lambda point: bar.advance(task), ray_address=ray_address)
    front = pareto(points)
    title = f"{cfg.title} {cfg.depth}-{cfg.dim} ({cfg.variant}), {len(x)} inputs of {description}"
    report = {"checkpoint": str(path), "data": description, "points": points, "pareto": front}
    texts = {"sweep.md": to_markdown(points, front, title),
             "sweep.json": json.dumps(report, indent=1, sort_keys=True) + "\n"}
    writers = {name: (lambda p, text=text: p.write_text(text)) for name, text in texts.items()}
    writers["pareto.png"] = lambda p: pareto_png(points, front, title, p)
    written = write_files_atomically(out, writers)
    if as_json:
        click.echo(texts["sweep.json"], nl=False)
    else:
        click.echo(texts["sweep.md"], nl=False)
        click.echo(f"wrote {', '.join(written)}")


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@options(*data_options)
@click.option("--integrity-only", is_flag=True, help="Only check the files against the manifest.")
@json_option
def verify(artifact, data, samples, batch, integrity_only, as_json):
    """Check an artifact directory: every file against its manifest, then Lava (Loihi2SimCfg, fixed_pt) and the
    netx stem against the simulator, spike for spike, on every layer.

    --data: the inputs to compare on (default: the bundled model's test split, or synthetic inputs): the first 8
    unless --samples."""
    from .api import compare_on_lava
    from .artifact import verify_files
    from .backends.netx import NETX_FILE
    from .ir.serialize import load_graph

    manifest = verify_files(artifact)
    result = {"artifact": str(artifact), "files_checked": len(manifest["files"])}
    if not integrity_only:
        graph = load_graph(artifact)
        x, note = artifact_inputs(graph, manifest, data, samples or 8)
        netx = artifact / NETX_FILE if NETX_FILE in manifest["files"] else None
        result.update({"inputs": note, **compare_on_lava(graph, x, netx, batch_or_default(batch))})
    ok = result.get("ok", True)
    result["ok"] = ok
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{artifact}: {result['files_checked']} files match the manifest")
        if not integrity_only:
            bad = [k for k, v in result["layers"].items() if v["equal"] != v["total"]]
            click.echo(f"Lava vs simulator on {result['samples']} inputs ({result['inputs']}): "
                       f"{len(result['layers']) - len(bad)}/{len(result['layers'])} layers spike for spike"
                       f"{' (differ: ' + ', '.join(bad) + ')' if bad else ''}; predictions "
                       f"{'equal' if result['predictions_equal'] else 'DIFFER'}; Lava "
                       f"{result['lava_s_per_input']:.2f} s/input vs simulator {result['sim_s_per_input'] * 1e3:.1f} "
                       f"ms/input ({result['lava_processes']} processes, {result['lava_steps']} steps)")
            if "netx_stem_equal" in result:
                click.echo(f"netx stem vs simulator: {'equal' if result['netx_stem_equal'] else 'DIFFER'}")
            custom = result["lava_custom_processes"]
            click.echo("Lava process classes: " + ", ".join(
                f"{name.rsplit('.', 1)[1]} x{v['count']} ({v['kind']})" for name, v in
                result["lava_process_classes"].items()) + (f"; not placeable by a Loihi 2 compiler (custom): "
                                                           f"{', '.join(custom)}" if custom else ""))
    if not ok:
        raise DeployError("Lava and the simulator disagree (see above)")


@cli.command("estimate")
@click.argument("rates", type=click.Path(path_type=Path))
@click.option("--target", type=click.Choice(["loihi2", "loihi"]), default="loihi2", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Where the forced spikes fall.")
@json_option
def estimate_cmd(rates, target, seed, as_json):
    """Every counting convention and the Loihi estimate from published per-layer firing rates: a JSON file with
    the architecture and the rate of every LIF (see spikformer_deploy.analysis.rates). The architecture runs with
    random weights and each LIF forced to its rate, so the figures are an estimate from rates, not event-driven."""
    from . import api
    from .analysis.report import joules_range, json_safe

    result = api.estimate_from_rates(rates, target, seed)
    if as_json:
        click.echo(json.dumps(json_safe(result), indent=1))
        return
    t, perf = result["target"]["totals"], result["target"]["performance"]
    click.echo(f"{result['kind'].upper()} ({result['source']})")
    print_conventions(result["counting_conventions"])
    click.echo(f"{target}: {t['neurons']:,} neurons, {t['cores']:,} cores, {t['chips']} chip(s) ({t['system']}); "
               f"latency {perf['latency_s'] * 1e3:.3f} ms")
    for e in result["target"]["energy"]:
        click.echo(f"  energy {e['profile']}/{e['convention']}: {joules_range(e['total_J'], e.get('range_J'))}")


def main(argv=None) -> int:
    handle_termination()
    try:
        rc = cli.main(args=argv, prog_name="spikformer-deploy", standalone_mode=False)
    except DeployError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except Terminated as exc:  # partial outputs were removed on the way out
        click.echo(f"error: terminated by {exc}", err=True)
        return 128 + exc.signum
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
