"""Seeded mutation fuzzing of everything a user hands the tool: checkpoint archives (zip members, pickle bytes,
sizes), artifact directories (graph.json, the safetensors header, with the manifest re-hashed so the loaders run)
and data files (.npy headers, .npz members, images). Each mutation must give exit 0 or exit 2 with one `error:`
line: no traceback, no crash, nothing left behind, memory bounded."""
import io
import json
import random
import resource
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support import BUNDLED, PILOTNET, run_cli

from spikformer_deploy.artifact import MANIFEST, sha256

SEED = 20261129
MAX_RSS_GROWTH_KB = 1_500_000  # what a mutation may add to the process' peak RSS


def check(rc, out, err, where: Path):
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    if rc == 2:
        assert err.count("\n") == 1 and err.startswith("error: "), err
    leftovers = [p.name for p in where.rglob("*") if ".partial-" in p.name or p.name == "INCOMPLETE"]
    assert not leftovers, leftovers


def flip(data: bytes, rng: random.Random, count: int) -> bytes:
    data = bytearray(data)
    for _ in range(count):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def rezip(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members = change(members)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def checkpoint_mutation(i: int, rng: random.Random, path: Path) -> None:
    raw = BUNDLED.read_bytes()
    kind = i % 5
    if kind == 0:
        path.write_bytes(raw[:rng.randrange(len(raw))])
    elif kind == 1:
        path.write_bytes(flip(raw, rng, rng.randint(1, 64)))
    elif kind == 2:  # the pickle itself
        rezip(BUNDLED, path, lambda m: {k: flip(v, rng, rng.randint(1, 8)) if k.endswith("data.pkl") else v
                                        for k, v in m.items()})
    elif kind == 3:  # a member missing
        rezip(BUNDLED, path, lambda m: {k: v for j, (k, v) in enumerate(m.items()) if j != rng.randrange(len(m))})
    else:  # a storage entry cut short
        rezip(BUNDLED, path, lambda m: {k: v[:rng.randrange(len(v) + 1)] if "/data/" in k and rng.random() < 0.3
                                        else v for k, v in m.items()})


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from spikformer_deploy.cli import main

    out = tmp_path_factory.mktemp("fuzz") / "a.deploy"
    assert main(["export", "-o", str(out), "--calibration", "16", "--target", "loihi2"]) == 0
    return out


def rehash(directory: Path) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"] = {n: sha256(directory / n) for n in manifest["files"]}
    (directory / MANIFEST).write_text(json.dumps(manifest))


def artifact_mutation(i: int, rng: random.Random, directory: Path) -> None:
    kind = i % 4
    if kind == 0:  # bytes of graph.json
        p = directory / "graph.json"
        p.write_bytes(flip(p.read_bytes(), rng, rng.randint(1, 16)))
    elif kind == 1:  # values in graph.json: a node's attribute, shape or op replaced
        p = directory / "graph.json"
        data = json.loads(p.read_text())
        node = rng.choice(data["nodes"])
        key = rng.choice(["op", "shape", "inputs", "attributes", "arrays"])
        node[key] = rng.choice([None, -1, 10**12, "Conv2d", [], {}, ["x"], 2.5, {"vth": -5}])
        p.write_text(json.dumps(data))
    elif kind == 2:  # the safetensors header (its length prefix and its JSON)
        p = directory / "params.safetensors"
        raw = p.read_bytes()
        cut = 8 + int.from_bytes(raw[:8], "little")
        p.write_bytes(flip(raw[:cut], rng, rng.randint(1, 6)) + raw[cut:])
    else:  # the params truncated
        p = directory / "params.safetensors"
        raw = p.read_bytes()
        p.write_bytes(raw[:rng.randrange(len(raw))])
    rehash(directory)


def data_mutation(i: int, rng: random.Random, directory: Path) -> Path:
    kind = i % 6
    if kind == 0:  # an .npy header's shape or dtype rewritten
        buf = io.BytesIO()
        np.save(buf, np.random.default_rng(i).random((4, 1, 16, 16), dtype=np.float32))
        raw = buf.getvalue()
        header = raw[:128].replace(b"(4, 1, 16, 16)", rng.choice([b"(999999999, 1, 16, 16)", b"(4, 1, 16, 160)",
                                                                   b"(-4, 1, 16, 16)", b"(4, 1, 16, 16, 2)"]))
        header = header.replace(b"<f4", rng.choice([b"<f4", b"|O", b"<c8", b"<U2"]))
        path = directory / "x.npy"
        path.write_bytes(header[:128].ljust(128, b" ") + raw[128:])
    elif kind == 1:
        path = directory / "x.npy"
        path.write_bytes(flip(Path(np.lib.format.__file__).read_bytes()[:512], rng, 4))
    elif kind == 2:  # an .npz whose members are mutated
        path = directory / "x.npz"
        np.savez(path, x=np.zeros((3, 1, 16, 16), np.float32), y=np.array([0, 1, 2]))
        rezip(path, path, lambda m: {k: flip(v, rng, rng.randint(1, 8)) for k, v in m.items()})
    elif kind == 3:  # values: NaN, labels out of range, wrong dtype
        path = directory / "x.npz"
        x = np.random.default_rng(i).random((3, 1, 16, 16)).astype(np.float32)
        choice = rng.randrange(3)
        if choice == 0:
            x[0, 0, 0, 0] = np.nan
        np.savez(path, x=x, y=np.array([0, 1, 99 if choice == 1 else 2]).astype(np.float32 if choice == 2 else int))
    elif kind == 4:  # an image folder with a corrupt PNG
        from PIL import Image

        folder = directory / "images" / "0"
        folder.mkdir(parents=True)
        buf = io.BytesIO()
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, format="PNG")
        (folder / "a.png").write_bytes(flip(buf.getvalue(), rng, rng.randint(1, 12)))
        path = directory / "images"
    else:
        path = directory / "x.npy"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    return path


@pytest.mark.parametrize("i", range(20))
def test_checkpoint_archives(tmp_path, capsys, i):
    rng = random.Random(SEED + i)
    path = tmp_path / "m.pth"
    checkpoint_mutation(i, rng, path)
    rc, out, err = run_cli(capsys, "info", str(path), "--num-heads", "2", "--T", "4", "--img-size", "16")
    check(rc, out, err, tmp_path)


@pytest.mark.parametrize("i", range(16))
def test_artifact_directories(artifact, tmp_path, capsys, i):
    rng = random.Random(SEED + 100 + i)
    copy = tmp_path / "a.deploy"
    shutil.copytree(artifact, copy)
    artifact_mutation(i, rng, copy)
    rc, out, err = run_cli(capsys, "report", str(copy), "--samples", "2", "--format", "json")
    check(rc, out, err, tmp_path)


@pytest.mark.parametrize("i", range(18))
def test_data_files(tmp_path, capsys, i):
    rng = random.Random(SEED + 200 + i)
    path = data_mutation(i, rng, tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rc, out, err = run_cli(capsys, "simulate", "--data", str(path), "--calibration", "8", "--json")
    check(rc, out, err, tmp_path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < MAX_RSS_GROWTH_KB


PACK = PILOTNET


def netx_mutation(i: int, rng: random.Random, path: Path) -> None:
    """A lava-dl netx file with its bytes, or one dataset of one layer, replaced."""
    import h5py

    raw = (PACK / "network.net").read_bytes()
    if i % 3 == 0:
        path.write_bytes(flip(raw, rng, rng.randint(1, 32)))
        return
    path.write_bytes(raw)
    with h5py.File(path, "r+") as f:
        layer = f["layer"][str(rng.randrange(len(f["layer"])))]
        names = []
        layer.visit(lambda n: names.append(n) if isinstance(layer[n], h5py.Dataset) else None)
        name = rng.choice(names)
        del layer[name]
        if i % 3 == 1:
            layer[name] = rng.choice([np.array([1e30]), np.array([-3, 7]), np.array(b"conv"), np.zeros((0,)),
                                      np.array([[2.5]]), np.array(10**9), np.array([-1])])


@pytest.mark.parametrize("i", range(12))
def test_netx_networks(tmp_path, capsys, i):
    rng = random.Random(SEED + 300 + i)
    path = tmp_path / "n.net"
    netx_mutation(i, rng, path)
    rc, out, err = run_cli(capsys, "simulate", str(path), "--data", str(PACK / "image.npy"), "--T", "4", "--json")
    check(rc, out, err, tmp_path)
