"""Hostile input and interrupted runs: every bad input is one `error:` line and exit 2, nothing half-written is left
or mistaken for a result, and a replaced artifact is never missing."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support import REPO, run_cli

from spikformer_deploy.artifact import MANIFEST, sha256
from spikformer_deploy.errors import ArtifactError
from spikformer_deploy.outputs import INCOMPLETE, move_into_place, partial_dir

CLI = [sys.executable, "-m", "spikformer_deploy.cli"]


def one_error_line(rc, err, needle=""):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert needle in err, err


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from spikformer_deploy.cli import main

    out = tmp_path_factory.mktemp("hard") / "a.deploy"
    assert main(["export", "-o", str(out), "--calibration", "32", "--target", "loihi2"]) == 0
    return out


def tampered(artifact, tmp_path, edit) -> Path:
    copy = tmp_path / "copy.deploy"
    shutil.copytree(artifact, copy)
    edit(copy)
    return copy


def _rewrite_manifest(copy, change):
    data = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps(change(data)))


@pytest.mark.parametrize("edit,needle", [
    (lambda d: (d / "extra.bin").write_bytes(b"x"), "extra.bin is not listed"),
    (lambda d: (d / ".hidden").mkdir(), ".hidden is not listed"),
    (lambda d: _rewrite_manifest(d, lambda m: {**m, "files": {**m["files"], "../outside.bin": "0" * 64}}),
     "'../outside.bin' is not a file name"),
    (lambda d: _rewrite_manifest(d, lambda m: {**m, "files": {**m["files"], "/etc/passwd": "0" * 64}}),
     "'/etc/passwd' is not a file name"),
    (lambda d: _rewrite_manifest(d, lambda m: [m]), "expected a JSON object, got a list"),
    (lambda d: _rewrite_manifest(d, lambda m: {**m, "files": list(m["files"])}), "'files' must be an object"),
    (lambda d: _rewrite_manifest(d, lambda m: {**m, "files": {k: 5 for k in m["files"]}}), "no sha256"),
    (lambda d: _rewrite_manifest(d, lambda m: {**m, "config": "cifar10"}), "'config' must be an object"),
    (lambda d: ((d / "graph.json").unlink(), (d / "graph.json").symlink_to("/etc/hostname")),
     "graph.json is not a plain file"),
    (lambda d: (d / MANIFEST).write_bytes(b"\xff\xfe"), "not valid JSON"),
    (lambda d: (d / INCOMPLETE).write_text("x"), "an export that did not finish"),
])
def test_verify_trusts_only_what_the_manifest_lists(artifact, tmp_path, capsys, edit, needle):
    copy = tampered(artifact, tmp_path, edit)
    for command in (["verify", str(copy), "--integrity-only"], ["report", str(copy), "--samples", "2"]):
        rc, _, err = run_cli(capsys, *command)
        one_error_line(rc, err, needle)


@pytest.mark.parametrize("args,needle", [
    (("report", "-o", "FILE/r.md"), "is not a directory"),
    (("report", "-o", "DIR"), "it is a directory"),
    (("report", "-o", "RO/r.md"), "is not writable"),
    (("simulate", "--energy", "--plot", "FILE"), "it is a file, not a directory"),
    (("simulate", "--energy", "--plot", "FILE/sub"), "is not a directory"),
    (("simulate", "--energy", "--plot", "RO/plots"), "is not writable"),
    (("export", "-o", "FILE"), "is a file, not an artifact directory"),
    (("export", "-o", "RO/a.deploy"), "is not writable"),
])
def test_output_paths_fail_before_the_work(tmp_path, capsys, monkeypatch, args, needle):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "RO").mkdir()
    (tmp_path / "RO").chmod(0o555)
    # root may write into a 0555 directory: ask the permission check as an ordinary user would be answered
    real_access = os.access
    monkeypatch.setattr("spikformer_deploy.outputs.os.access", lambda path, mode: real_access(path, mode) and not (
        Path(path) == tmp_path / "RO" and mode & os.W_OK))
    start = time.perf_counter()
    rc, _, err = run_cli(capsys, *(str(tmp_path / a) if a.split("/")[0] in ("FILE", "DIR", "RO") else a
                                   for a in args))
    one_error_line(rc, err, needle)
    assert time.perf_counter() - start < 5, "the check must come before the simulation"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR", "FILE", "RO"]
    assert list((tmp_path / "RO").iterdir()) == [] and list((tmp_path / "DIR").iterdir()) == []


def test_a_killed_runs_partial_directory_is_never_a_result(artifact, tmp_path, capsys):
    """A SIGKILLed export cannot clean up: its partial directory (complete files, a manifest, the INCOMPLETE
    marker) fails verify, and the next export beside it removes it."""
    stale = tmp_path / ".b.deploy.partial-999999-x"  # pid 999999: not running
    shutil.copytree(artifact, stale)
    (stale / INCOMPLETE).write_text("x")
    rc, _, err = run_cli(capsys, "verify", str(stale), "--integrity-only")
    one_error_line(rc, err, "an export that did not finish")
    rc, _, err = run_cli(capsys, "export", "-o", str(tmp_path / "b.deploy"), "--calibration", "16", "--target",
                         "loihi2")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.deploy"]


def test_concurrent_exports_without_force_one_wins(tmp_path):
    out = tmp_path / "same.deploy"
    args = [*CLI, "export", "-o", str(out), "--calibration", "16", "--target", "loihi2"]
    procs = [subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert loser.count("\n") == 1 and ("exists and is not empty" in loser or "created by someone else" in loser)
    manifest = json.loads((out / MANIFEST).read_text())
    assert all(sha256(out / n) == d for n, d in manifest["files"].items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.deploy"]


def test_forced_replacement_is_never_missing(tmp_path):
    """move_into_place(force=True) swaps atomically: a reader polling the destination always finds a manifest."""
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / MANIFEST).write_text("old")
    missing, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if not (dest / MANIFEST).exists():
                missing.append(time.perf_counter())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(200):
            new = partial_dir(tmp_path, "d")
            (new / MANIFEST).write_text(f"new {i}")
            (new / INCOMPLETE).unlink()
            move_into_place(new, dest, force=True)
    finally:
        stop.set()
        watcher.join()
    assert not missing and (dest / MANIFEST).read_text() == "new 199"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("y")
    with pytest.raises(ArtifactError, match="created by someone else"):
        move_into_place(tmp_path / "x", dest, force=False)
