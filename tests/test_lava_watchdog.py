"""Lava runs are bounded: a Lava child that dies mid-run (lava-nc/lava#83: the runtime waits on it forever) or a run
past its limit ends `verify` with one line naming the dead process and its signal, exit code 2, and no child left."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from support import REPO

from spikformer_deploy.backends.lava_io import child_pids

CLI = [sys.executable, "-m", "spikformer_deploy.cli"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from spikformer_deploy.cli import main

    out = tmp_path_factory.mktemp("watchdog") / "a.deploy"
    assert main(["export", "-o", str(out), "--calibration", "16", "--target", "loihi2"]) == 0
    return out


def children(pid: int) -> list[int]:
    return sorted(child_pids(pid))


def run_verify(artifact, tmp_path, env=None, on_children=None):
    """verify on one input, its output in files (an orphan holding a pipe would hang the test instead of failing
    it); ``on_children(pids)`` runs once the Lava processes are up. Returns (rc, stderr, every child pid seen)."""
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err, open(tmp_path / "stdout", "w") as out:
        proc = subprocess.Popen([*CLI, "verify", str(artifact), "--samples", "1"], cwd=REPO, stdout=out,
                                stderr=err, env={**os.environ, **(env or {})})
    seen: set[int] = set()
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            kids = children(proc.pid)
            seen.update(kids)
            if on_children and len(kids) >= 20:
                time.sleep(0.5)  # the run is under way
                on_children(kids)
                on_children = None
            time.sleep(0.05)
        rc = proc.wait(timeout=max(1.0, deadline - time.time()))
    finally:
        if proc.poll() is None:  # the watchdog failed: do not leave the suite's machine full of Lava processes
            for pid in children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
    return rc, err_path.read_text(), seen


def assert_no_orphans(seen: set[int]) -> None:
    time.sleep(0.5)
    alive = [pid for pid in seen if os.path.exists(f"/proc/{pid}") and
             open(f"/proc/{pid}/stat").read().split(") ")[1][0] != "Z"]
    assert not alive, f"Lava processes left running: {alive}"


def test_a_killed_lava_child_ends_verify_with_one_line(artifact, tmp_path):
    victims = []

    def kill_one(kids):
        victims.append(sorted(kids)[len(kids) // 2])
        os.kill(victims[0], signal.SIGKILL)

    start = time.perf_counter()
    rc, err, seen = run_verify(artifact, tmp_path, on_children=kill_one)
    assert victims, "Lava never started its processes"
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"error: Lava process \S+ '\S+' \(pid {victims[0]}\) died of SIGKILL during the run; "
                        rf"stopped the run and its \d+ processes\n", err), err
    assert time.perf_counter() - start < 100
    assert_no_orphans(seen)


def test_a_lava_run_past_its_limit_is_stopped(artifact, tmp_path):
    rc, err, seen = run_verify(artifact, tmp_path, env={"SPIKFORMER_LAVA_LIMIT_S": "2"})
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("error: Lava made no progress within 2 s ("), err
    assert_no_orphans(seen)
