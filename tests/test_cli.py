"""The command line: info on the bundled model and on fixtures; bad input gives one line and a non-zero exit."""
import json
import os
import subprocess
import sys

import pytest

from support import run_cli, BUNDLED, FIXTURE_CASES, fixture_dir




def test_info_json_on_fixture(capsys):
    path = fixture_dir("imagenet") / FIXTURE_CASES["imagenet"][0]
    rc, out, err = run_cli(capsys, "info", str(path), "--num-heads", "4", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["variant"] == "imagenet" and data["parameters"] == 177584
    assert data["config"]["num_heads"] == 4 and data["T"] == 4 and data["input_shape"] == ["B", 3, 96, 96]


def test_info_defaults_to_bundled_model(capsys):
    rc, out, err = run_cli(capsys, "info", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["checkpoint"] == str(BUNDLED) and data["variant"] == "cifar10"
    assert data["config"]["in_channels"] == 1


def test_info_table(capsys):
    rc, out, _ = run_cli(capsys, "info", str(fixture_dir("cifar10") / "model_best.pth.tar"))
    assert rc == 0 and "234,070" in out and "6 (head dim 16)" in out


@pytest.mark.parametrize("args,needle", [
    (["info", "/nonexistent/x.pth"], "does not exist"),
    (["info", "/"], "directory"),
    (["info", "--bogus"], "No such option"),
    (["nosuchcommand"], "No such command"),
])
def test_bad_input_is_one_line(capsys, args, needle):
    rc, out, err = run_cli(capsys, *args)
    assert rc != 0
    assert err.count("\n") == 1 and err.startswith("error:") and needle in err


def test_missing_num_heads_via_cli(capsys):
    rc, _, err = run_cli(capsys, "info", str(fixture_dir("cifar10dvs") / "checkpoint_max_test_acc1.pth"))
    assert rc == 2 and "--num-heads" in err and err.count("\n") == 1


def test_console_script_no_traceback(tmp_path):
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(os.urandom(1000))
    proc = subprocess.run([sys.executable, "-m", "spikformer_deploy", "info", str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1 and "cannot read" in proc.stderr
