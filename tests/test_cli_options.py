"""One option vocabulary: every shared option is present where its rule says, and means the same everywhere (same
type, default and help); the README's command table is this matrix."""
import click
import pytest

from support import REPO

from spikformer_deploy.cli import cli
from spikformer_deploy.cli_inputs import (SWEEP_AXES, attention_option, bits_options, calibration_options,
                                          chains_option, chips_option, data_options, json_option, model_settings,
                                          options)

READS_DATA = {"train", "finetune", "simulate", "export", "report", "sweep", "verify"}
QUANTIZES = {"finetune", "simulate", "export", "report", "sweep"}
BUILDS_A_MODEL = {"info", "finetune", "simulate", "export", "report", "sweep"}
DEPLOYS = {"simulate", "export", "report"}  # build the deploy graph a user runs, maps or exports
PLACES = DEPLOYS | {"sweep"}  # place the attention (sweep: as simulate places it)


def reference_options() -> dict[str, click.Option]:
    """Each shared option as cli_inputs makes it, by its flag."""
    command = click.command()(options(*model_settings, *data_options, *calibration_options, *bits_options,
                                      chains_option, attention_option, chips_option, json_option)(lambda **kw: None))
    return {p.opts[0]: p for p in command.params}


def required(command: str) -> set[str]:
    need = {"--json"}
    if command in READS_DATA:
        need |= {"--data", "--samples", "--batch"}
    if command in QUANTIZES:
        need |= {"--calibration", "--calibration-data", "--weight-bits", "--input-bits"}
    if command in BUILDS_A_MODEL:
        need |= {"--num-heads", "--T", "--img-size"}
    if command in DEPLOYS:
        need |= {"--chains", "--chips"}
    if command in PLACES:
        need |= {"--attention"}
    return need


def flags(command: click.Command) -> dict[str, click.Parameter]:
    return {p.opts[0]: p for p in command.params if isinstance(p, click.Option)}


def signature(p: click.Option) -> tuple:
    return p.opts, p.name, p.type.to_info_dict(), p.default, p.help, p.is_flag, p.multiple, p.show_default


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_its_shared_options_with_one_meaning(name):
    command, reference = cli.commands[name], reference_options()
    have = flags(command)
    missing = sorted(required(name) - set(have))
    assert not missing, f"{name} lacks {missing}"
    for flag, param in have.items():
        if flag not in reference or (name == "sweep" and flag in SWEEP_AXES):
            continue
        assert signature(param) == signature(reference[flag]), f"{name} {flag} differs from the shared option"


def test_sweeps_axes_are_lists_of_the_shared_quantities():
    have = flags(cli.commands["sweep"])
    assert have["--weight-bits"].type.to_info_dict()["param_type"] == "String"
    assert all(have[flag].help.startswith("The sweep's axis:") for flag in SWEEP_AXES)


def option_matrix() -> str:
    """Commands x shared options, as the README shows it."""
    columns = list(reference_options())
    lines = ["| command | " + " | ".join(f"`{c}`" for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name in sorted(cli.commands):
        have = flags(cli.commands[name])
        cells = ["list" if name == "sweep" and c in SWEEP_AXES else ("✓" if c in have else "") for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_readme_shows_the_option_matrix():
    assert option_matrix() in (REPO / "README.md").read_text(), "README's option table:\n" + option_matrix()
