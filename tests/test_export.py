"""export / verify: artifact contents, manifest, determinism, atomicity, bad input."""
import json

import numpy as np
import pytest

from support import run_cli

from spikformer_deploy.cli import main
from spikformer_deploy.artifact import MANIFEST, sha256



@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "digits.deploy"
    assert main(["export", "-o", str(out), "--calibration", "64"]) == 0
    return out


def test_artifact_contents_and_manifest(artifact):
    manifest = json.loads((artifact / MANIFEST).read_text())
    assert set(manifest["files"]) == {"graph.json", "params.safetensors", "model.onnx", "model.nir", "stem.netx.h5"}
    for name, digest in manifest["files"].items():
        assert sha256(artifact / name) == digest
    assert manifest["versions"]["torch"].startswith("2.3") and manifest["versions"]["lava-nc"] == "0.10.0"
    assert manifest["source"]["checkpoint"] == "spikformer_digits.pth" and len(manifest["source"]["sha256"]) == 64
    assert manifest["quantization"]["weight_bits"] == 8 and manifest["config"]["variant"] == "cifar10"
    assert manifest["nir_weights"] == "float"
    assert not [p for p in artifact.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_export_is_byte_identical(artifact, tmp_path, capsys):
    again = tmp_path / "again"
    rc, _, err = run_cli(capsys, "export", "-o", str(again), "--calibration", "64")
    assert rc == 0, err
    for p in artifact.iterdir():
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name


def test_nir_on_the_deploy_grid_is_recorded_and_smaller(artifact, tmp_path, capsys):
    import nir

    out = tmp_path / "grid"
    rc, _, err = run_cli(capsys, "export", "-o", str(out), "--calibration", "64", "--target", "nir",
                         "--nir-weights", "grid")
    assert rc == 0, err
    assert json.loads((out / MANIFEST).read_text())["nir_weights"] == "grid"
    assert (out / "model.nir").stat().st_size < 0.6 * (artifact / "model.nir").stat().st_size  # small model: headers
    weights = [n.weight for n in nir.read(str(out / "model.nir")).nodes.values() if hasattr(n, "weight")]
    assert weights and all(w.dtype == np.int8 for w in weights)
    rc, _, err = run_cli(capsys, "export", "-o", str(tmp_path / "bad"), "--nir-weights", "half")
    assert rc == 2 and err.count("\n") == 1 and "--nir-weights" in err


def test_verify_detects_tampering(artifact, tmp_path, capsys):
    import shutil

    rc, out, _ = run_cli(capsys, "verify", str(artifact), "--integrity-only")
    assert rc == 0 and "5 files match" in out
    for case in ("missing", "changed", "no_manifest"):
        copy = tmp_path / case
        shutil.copytree(artifact, copy)
        if case == "missing":
            (copy / "model.onnx").unlink()
        elif case == "changed":
            with open(copy / "params.safetensors", "r+b") as f:
                f.seek(100)
                f.write(b"\x00\x01")
        else:
            (copy / MANIFEST).unlink()
        rc, _, err = run_cli(capsys, "verify", str(copy), "--integrity-only")
        needle = {"missing": "missing model.onnx", "changed": "params.safetensors does not match",
                  "no_manifest": "missing manifest.json"}[case]
        assert rc == 2 and needle in err and err.count("\n") == 1


def test_export_bad_input_leaves_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, "export", "-o", str(out), "--target", "tpu")
    assert rc == 2 and "unknown target 'tpu'" in err and not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc, _, err = run_cli(capsys, "export", "-o", str(out), "--target", "onnx", "--calibration", "8")
    assert rc == 2 and "not empty" in err and (out / "keep.txt").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = run_cli(capsys, "export", "-o", str(blocker / "sub"), "--target", "onnx", "--calibration", "8")
    assert rc == 2 and "it is a file, not a directory" in err

    import spikformer_deploy.backends.onnx.export as onnx_export

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(onnx_export.torch.onnx, "export", broken)
    rc, _, err = run_cli(capsys, "export", "-o", str(tmp_path / "half"), "--target", "onnx", "--calibration", "8")
    assert rc == 2 and "disk full" in err and err.count("\n") == 1
    assert not (tmp_path / "half").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    rc, _, err = run_cli(capsys, "export", "-o", str(out), "--target", "nir", "--calibration", "8", "--force")
    monkeypatch.undo()
    assert rc == 0 and not (out / "keep.txt").exists() and (out / "model.nir").exists()


def test_stream_synapses_have_no_single_grid(tmp_path, capsys):
    """A real-valued stream's writers hold biases the integer graph moves into their readers: NIR's grid weights and
    finetune, which need one grid per synapse, refuse with one line and write nothing."""
    from support import FAMILY, load_family_fixture

    _, x, *_ = load_family_fixture("sdt/cifar10")
    ckpt = str(FAMILY / "sdt/cifar10/model_best.pth.tar")
    data = tmp_path / "xy.npz"
    np.savez(data, x=x.numpy(), y=np.arange(len(x)))
    for args in (("export", ckpt, "--target", "nir", "--nir-weights", "grid", "-o", str(tmp_path / "out"),
                  "--calibration-data", str(data)),
                 ("finetune", ckpt, "--data", str(data), "-o", str(tmp_path / "out.pth"))):
        rc, _, err = run_cli(capsys, *args)
        assert rc == 2 and err.count("\n") == 1 and "no single deploy grid" in err, err
    assert list(tmp_path.iterdir()) == [data]
