"""Terminal rendering for the CLI (rich): consoles, progress bars, tables. Only the CLI imports this."""
from __future__ import annotations

from contextlib import contextmanager


def console_for(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        console = Console(stderr=stderr, highlight=False, width=160)
    return console


def si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def progress(label: str, quiet: bool = False):
    """A progress bar on stderr when it is a terminal (a log gains nothing from one)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console_for(stderr=True)
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    disable=quiet or not console.is_terminal, transient=True)


@contextmanager
def epoch_progress(epochs: int, label: str = "training", quiet: bool = False):
    """A bar over training epochs with the last epoch's loss; yields ``advance(epoch, epochs, loss)``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = console_for(stderr=True)
    columns = (TextColumn(label), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task(label, total=epochs, loss=float("nan"))
        yield lambda epoch, _, loss: bar.update(task, completed=epoch, loss=loss)


def print_simulation(summary: dict, rows: list, total: dict) -> None:
    from rich.table import Table

    console = console_for()
    acc = (f"float top-1 {summary['float_accuracy']:.2%}, integer top-1 {summary['int_accuracy']:.2%}, "
           if "float_accuracy" in summary else "")
    agreement = f"prediction agreement {summary['agreement']:.2%}" if "agreement" in summary else \
        "integer network as given (no float model)"
    console.print(f"{summary['samples']} samples of {summary['data']} ({summary['device']}): {acc}{agreement}")
    table = Table(title=f"Per layer, per inference (integer model, {summary['weight_bits']}-bit weights)")
    agreement = summary.get("spike_agreement", {})
    for col in ("layer", "op", "rate", "SOPs", "SOPs (paper)", "MACs", "ANDs", "adds", "updates", "margin",
                "spikes = float"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for r in rows:
        rate = r.firing_rate if r.firing_rate is not None else r.input_rate
        margin = r.overflow_margin_bits
        table.add_row(r.name, r.op, "" if rate is None else f"{rate:.3f}",
                      *(si(getattr(r, k)) if getattr(r, k) else "" for k in ("sops", "sops_paper", "macs", "ands", "adds",
                                                            "neuron_updates")),
                      "" if margin is None else f"{margin:.1f} b",
                      f"{agreement[r.name]:.4f}" if r.name in agreement else "")
    table.add_row("total", "", "", *(si(total[k]) for k in ("sops", "sops_paper", "macs", "ands", "adds",
                                                            "neuron_updates")),
                  "" if total["min_overflow_margin_bits"] is None else f"{total['min_overflow_margin_bits']:.1f} b",
                  "", style="bold")
    console.print(table)
    console.print("rate: output firing rate (neurons) or input event rate (synapses); margin: spare bits below the "
                  "24-bit u/v limit on this data; spikes = float: share of spike decisions (neuron x step x input) "
                  "the integer model takes as the float model does; dense-equivalent MACs (GPU): "
                  + si(total["dense_macs"]))


def print_energy(report: dict) -> None:
    from rich.table import Table

    from .analysis.report import joules, joules_range

    console = console_for()
    estimates = report["estimates"]
    gpu = [e for e in estimates if e["convention"] == "gpu_analytic"]
    reference = next((e for e in gpu if e["profile"] == "h200_sxm"), gpu[0] if gpu else None)
    table = Table(title="Energy per inference")
    for col in ("profile", "convention", "energy", "dynamic", "static",
                f"{reference['profile']} analytic ÷ this" if reference else "", "figures"):
        table.add_column(col, justify="right" if col not in ("profile", "convention", "figures") else "left")
    for e in estimates:
        kinds = sorted({c["kind"] for c in report["profiles"][e["profile"]]["constants"].values()})
        ratio = f"{reference['total_J'] / e['total_J']:.2f}" if reference and e["total_J"] else ""
        table.add_row(e["profile"], e["convention"], joules_range(e["total_J"], e.get("range_J")),
                      *(joules_range(e[f"{part}_J"], e.get(f"{part}_range_J")) if f"{part}_J" in e else ""
                        for part in ("dynamic", "static")), ratio, "/".join(kinds))
    measured = report["gpu_measured"]
    for run in measured.get("runs", []):
        table.add_row(run["gpu"], f"measured (NVML), batch {run['batch']}", joules(run["J_per_image"]), "", "", "",
                      f"idle-subtracted {joules(run['J_per_image_idle_subtracted'])}, "
                      f"{run['images_per_s']:.0f} images/s")
    for e in gpu:
        for key in ("batch_1", "throughput"):
            run = e[key]
            table.add_row(e["profile"], f"gpu_analytic, batch {run['batch']}", joules(run["J_per_input"]), "", "", "",
                          f"{run['inputs_per_s']:,.0f} inputs/s, {run['utilisation']:.1%} busy, "
                          f"{run['power_W']:.0f} W")
    console.print(table)
    for e in estimates:  # where a chip's static power dominates a small model, say so
        for note in (a for a in e["assumptions"] if a.startswith("static > dynamic")):
            console.print(f"{e['profile']}: {note}")
    if measured.get("kind") != "measured":
        console.print(f"GPU: {measured['reason']}")
    layers = Table(title="Energy per layer per inference (µJ)")
    shown = [e for e in estimates if e["convention"] != "gpu_analytic"]
    layers.add_column("layer")
    for e in shown:
        layers.add_column(f"{e['profile']}\n{e['convention']}", justify="right")
    names = list(dict.fromkeys(n for e in shown for n in e["per_layer_J"]))
    for name in names:
        layers.add_row(name, *(f"{e['per_layer_J'][name] * 1e6:.3f}" if name in e["per_layer_J"] else ""
                               for e in shown))
    layers.add_row("total", *(f"{e['total_J'] * 1e6:.3f}" for e in shown), style="bold")
    console.print(layers)
    for path in report["plots"]:
        console.print(f"wrote {path}")


def print_conventions(report: dict) -> None:
    """Every counting convention over the same counts: what it counts, how, where from, and what it comes to."""
    from rich.table import Table

    from .analysis.report import joules

    console = console_for()
    rows = report["conventions"]
    table = Table(title=f"Counting conventions side by side ({report['kind']}; energy at {report['profile']}'s "
                        "E_MAC / E_AC)")
    for col in ("convention", "dense", "MACs", "ACs", "energy", "attention", "integer / real inputs", "pooling",
                "bias", "neurons"):
        table.add_column(col, justify="right" if col in ("dense", "MACs", "ACs", "energy") else "left")
    for c in rows:
        t = c["treatment"]
        table.add_row(c["title"], si(c["dense"]), si(c["macs"]), si(c["acs"]), joules(c["energy_J"]), t["attention"],
                      t["integer_inputs"], t["pooling"], t["bias"], t["neurons"])
    console.print(table)
    kinds = list(rows[0]["by_layer_kind"]) if rows else []
    split = Table(title="Ops (MACs + ACs) each convention counts, by kind of layer")
    split.add_column("convention")
    for k in kinds:
        split.add_column(k, justify="right")
    for c in rows:
        split.add_row(c["title"], *(si(c["by_layer_kind"][k]) if c["by_layer_kind"][k] else "-" for k in kinds))
    console.print(split)
    for c in rows:
        console.print(f"{c['title']}: {c['definition']} ({c['source']})" + "".join(f"; {n}" for n in c["notes"]),
                      markup=False)
