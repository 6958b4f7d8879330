"""simulate on a Ray cluster: a head started by the test in a network namespace of its own (loopback only), shards
as tasks, totals equal to the local run bit for bit, a dead worker's shard retried, a lost one an error."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from support import BUNDLED, FMNIST_TEST, FMNIST_TRAIN, run_cli

from spikformer_deploy import load_checkpoint
from spikformer_deploy.data import load_data

BIN = Path(sys.executable).parent
PORT = 6399
COMPARED = ("samples", "float_accuracy", "int_accuracy", "agreement", "spike_agreement", "totals_per_inference",
            "layers")


def test_ray_shards_equal_the_local_run(tmp_path, capsys):
    assert shutil.which("unshare") and shutil.which("ip"), "the test needs util-linux unshare and iproute2 ip"
    crashes = tmp_path / "crashes"
    x, y = load_data(FMNIST_TEST, load_checkpoint(BUNDLED).config)
    np.savez(tmp_path / "data.npz", x=x[:150].numpy(), y=y[:150].numpy())  # 6 batches, 3 shards
    args = ["simulate", "--data", str(tmp_path / "data.npz"), "--calibration-data", str(FMNIST_TRAIN), "--batch",
            "25", "--json"]
    sweep_args = ["sweep", "--data", str(tmp_path / "data.npz"), "--calibration-data", str(FMNIST_TRAIN),
                  "--weight-bits", "6,8", "--T", "4", "--json"]
    script = f"""
set -u
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0 SPIKFORMER_DEPLOY_CRASHES={crashes}
{BIN}/ray start --head --node-ip-address=127.0.0.1 --port={PORT} --num-cpus=2 --include-dashboard=false \\
    --disable-usage-stats > {tmp_path}/head.log 2>&1 || exit 90
trap '{BIN}/ray stop --force > /dev/null 2>&1' EXIT
run() {{ {BIN}/spikformer-deploy {' '.join(args)} --ray-address 127.0.0.1:{PORT} --shard-batches 2 "$@"; }}
date +%s; echo 1 > {crashes}; run > {tmp_path}/retried.json 2> {tmp_path}/retried.err; echo $? > {tmp_path}/retried.rc
date +%s; echo 9 > {crashes}; run > {tmp_path}/lost.json 2> {tmp_path}/lost.err; echo $? > {tmp_path}/lost.rc
{BIN}/spikformer-deploy {' '.join(sweep_args)} --ray-address 127.0.0.1:{PORT} -o {tmp_path}/sweep_ray \
    > {tmp_path}/sweep.json 2> {tmp_path}/sweep.err
{BIN}/spikformer-deploy {' '.join(args)} --ray-address 127.0.0.1:1 > /dev/null 2> {tmp_path}/dead.err
echo $? > {tmp_path}/dead.rc
"""
    try:
        done = subprocess.run(["unshare", "--net", "bash", "-c", script], capture_output=True, text=True,
                              timeout=600)
    finally:  # a killed script leaves its head running: stop it (the test's head is the machine's only one)
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, env={**os.environ})
    assert done.returncode == 0, (done.stderr, (tmp_path / "head.log").read_text()[-2000:])
    rc, out, err = run_cli(capsys, *args)
    assert rc == 0, err
    local = json.loads(out)
    # one crash: Ray reran the first shard, and the totals are the local run's, bit for bit
    assert (tmp_path / "retried.rc").read_text().strip() == "0", (tmp_path / "retried.err").read_text()[-2000:]
    retried = json.loads((tmp_path / "retried.json").read_text())
    for key in COMPARED:
        assert retried[key] == local[key], key
    # a shard that keeps failing is an error naming it, never a gap
    assert (tmp_path / "lost.rc").read_text().strip() == "2"
    lost = (tmp_path / "lost.err").read_text().strip().splitlines()
    assert lost[-1].startswith("error: shard 0 (inputs 0..49) failed after 2 retries"), lost
    assert int(crashes.read_text()) == 9 - 3  # the first try and both retries died
    assert (tmp_path / "lost.json").read_text() == ""
    # the sweep's points as tasks: the same points as in worker processes here
    rc, out, err = run_cli(capsys, *sweep_args, "-o", str(tmp_path / "sweep_local"))
    assert rc == 0, err
    assert json.loads((tmp_path / "sweep.json").read_text())["points"] == json.loads(out)["points"], \
        (tmp_path / "sweep.err").read_text()[-2000:]
    assert (tmp_path / "dead.rc").read_text().strip() == "2"
    assert (tmp_path / "dead.err").read_text().startswith("error: cannot reach the Ray cluster at 127.0.0.1:1")
