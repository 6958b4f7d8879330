"""Every example runs (short settings) with the public API only."""
import ast
import subprocess
import sys

import pytest

from support import REPO

import spikformer_deploy

EXAMPLES = REPO / "examples"
# example -> (arguments for a short run, text its output must hold); {out}: a fresh directory
RUNS = {
    "deploy_checkpoint.py": (["--samples", "1", "--out", "{out}/d.deploy"],
                             "14/14 layers spike for spike, predictions equal, netx stem equal"),
    "energy_comparison.py": (["--samples", "8", "--profile", "loihi2", "--profile", "cmos45nm"], "loihi2     loihi"),
    "feasibility_report.py": (["--variant", "cifar10", "--depth", "1", "--dim", "64", "--heads", "4", "--img-size",
                               "32", "--out", "{out}/report.md"], "cores on 1 chip(s)"),
}


def test_every_example_has_a_run():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_example_runs(name, tmp_path):
    args, expected = RUNS[name]
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *(a.format(out=tmp_path) for a in args)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout, done.stdout


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_example_uses_only_the_public_api(name):
    """It imports the package alone (as sd) and uses only what its __all__ names."""
    tree = ast.parse((EXAMPLES / name).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("spikformer_deploy"), ast.dump(node)
        if isinstance(node, ast.Import):
            assert all(a.name != "spikformer_deploy" or a.asname == "sd" for a in node.names), ast.dump(node)
            assert not any(a.name.startswith("spikformer_deploy.") for a in node.names), ast.dump(node)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sd":
            assert node.attr in spikformer_deploy.__all__, node.attr
