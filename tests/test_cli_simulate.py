"""simulate: default data, user data in every accepted form, and every kind of bad data."""
import json

import numpy as np
import pytest

from support import PILOTNET, run_cli, FIXTURE_CASES, fixture_dir

from spikformer_deploy.data import digits_split



def test_simulate_bundled_json(capsys):
    rc, out, err = run_cli(capsys, "simulate", "--json", "--calibration", "64")
    assert rc == 0, err
    data = json.loads(out)
    assert data["samples"] == 360 and data["data"].startswith("digits test split")
    assert data["int_accuracy"] >= data["float_accuracy"] - 0.005 and data["agreement"] >= 0.98
    layers = {r["name"]: r for r in data["layers"]}
    assert 0 < layers["block.0.attn.q_lif"]["firing_rate"] < 1
    # auto: the attention on neurocores, its AND neurons firing and its sum synapses adding
    assert data["attention"] == "neurocores" and layers["patch_embed.proj_conv"]["macs"] > 0
    assert layers["block.0.attn.ssa.and"]["spikes"] > 0 and layers["block.0.attn.ssa.sum"]["adds"] > 0
    assert data["totals_per_inference"]["sops"] == pytest.approx(sum(r["sops"] for r in data["layers"]))
    assert data["totals_per_inference"]["min_overflow_margin_bits"] > 0
    spiking = {r["name"] for r in data["layers"] if "firing_rate" in r}
    stages = {n for n in spiking if n.startswith("block.0.attn.ssa.")}  # no float counterpart
    assert stages == {f"block.0.attn.ssa.{s}" for s in ("and", "count", "product")}
    assert set(data["spike_agreement"]) == spiking - stages
    assert data["spike_agreement"]["patch_embed.proj_lif"] > 0.98  # the 8-bit image, one quantized layer in
    assert all(0.8 < v <= 1 for v in data["spike_agreement"].values())


def test_simulate_table(capsys):
    rc, out, _ = run_cli(capsys, "simulate", "--weight-bits", "6", "--batch", "100")
    assert rc == 0
    assert "integer top-1" in out and "block.0.attn.ssa" in out and "6-bit weights" in out


def test_simulate_npz_and_image_folder(tmp_path, capsys):
    from PIL import Image

    _, _, x, y = digits_split(16)
    np.savez(tmp_path / "d.npz", x=x[:40].numpy(), y=y[:40].numpy())
    rc, out, err = run_cli(capsys, "simulate", "--data", str(tmp_path / "d.npz"), "--json")
    assert rc == 0, err
    from_npz = json.loads(out)
    for i in range(40):
        folder = tmp_path / "images" / f"class{int(y[i])}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i, 0].numpy() * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    rc, out, err = run_cli(capsys, "simulate", "--data", str(tmp_path / "images"), "--json")
    assert rc == 0, err
    from_folder = json.loads(out)
    # every 5th input is held out for calibration: 32 are evaluated, none of them calibrated on
    assert from_npz["samples"] == from_folder["samples"] == 32 and from_npz["calibration_samples"] == 8
    assert "held out for calibration" in from_npz["data"]
    assert from_npz["float_accuracy"] >= 0.9 and from_folder["float_accuracy"] >= 0.9
    np.savez(tmp_path / "cal.npz", x=x[100:164].numpy())
    rc, out, err = run_cli(capsys, "simulate", "--data", str(tmp_path / "d.npz"), "--calibration-data",
                           str(tmp_path / "cal.npz"), "--json")
    assert rc == 0, err
    separate = json.loads(out)
    assert separate["samples"] == 40 and separate["calibration_samples"] == 64
    rc, _, err = run_cli(capsys, "simulate", "--calibration-data", str(tmp_path / "cal.npz"))
    assert rc == 2 and "--calibration-data goes with --data" in err


def test_simulate_dvs_frames(tmp_path, capsys):
    import torch

    x = torch.load(fixture_dir("cifar10dvs") / "input.pt").numpy()
    np.save(tmp_path / "frames.npy", x)
    ckpt = fixture_dir("cifar10dvs") / FIXTURE_CASES["cifar10dvs"][0]
    rc, out, err = run_cli(capsys, "simulate", str(ckpt), "--num-heads", "4", "--data", str(tmp_path / "frames.npy"),
                           "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["samples"] == 1 and "float_accuracy" not in data  # the other one calibrated


@pytest.mark.parametrize("case,needle", [
    ("missing", "does not exist"), ("wrong_shape", "needs images [N, 1, H, W]"),
    ("wrong_channels", "needs images [N, 1, H, W]"), ("nan", "NaN"), ("empty_folder", "no class sub-folders"),
    ("no_images", "holds no images"), ("bad_image", "cannot read image"), ("no_x", "no array 'x'"),
    ("bad_labels", "labels must be 0..9"), ("text_file", "expected an image folder"), ("empty", "is empty"),
    ("pickled", "cannot read"),
])
def test_simulate_bad_data_is_one_line(tmp_path, capsys, case, needle):
    path = tmp_path / "data.npz"
    if case == "missing":
        path = tmp_path / "nope.npz"
    elif case == "wrong_shape":
        np.savez(path, x=np.zeros((4, 64), np.float32))
    elif case == "wrong_channels":
        np.savez(path, x=np.zeros((4, 3, 16, 16), np.float32))
    elif case == "nan":
        x = np.zeros((4, 1, 16, 16), np.float32)
        x[0, 0, 0, 0] = np.nan
        np.savez(path, x=x)
    elif case == "empty_folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif case == "no_images":
        path = tmp_path / "folder"
        (path / "a").mkdir(parents=True)
    elif case == "bad_image":
        path = tmp_path / "folder"
        (path / "a").mkdir(parents=True)
        (path / "a" / "x.png").write_bytes(b"not a png")
    elif case == "no_x":
        np.savez(path, images=np.zeros((4, 1, 16, 16), np.float32))
    elif case == "bad_labels":
        np.savez(path, x=np.zeros((4, 1, 16, 16), np.float32), y=np.array([0, 1, 2, 12]))
    elif case == "text_file":
        path = tmp_path / "data.txt"
        path.write_text("hello")
    elif case == "empty":
        np.savez(path, x=np.zeros((0, 1, 16, 16), np.float32))
    elif case == "pickled":
        np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        path = tmp_path / "obj.npy"
    rc, out, err = run_cli(capsys, "simulate", "--data", str(path))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error:") and needle in err, err


def test_simulate_needs_data_for_original_checkpoints(capsys):
    rc, _, err = run_cli(capsys, "simulate", str(fixture_dir("cifar10") / "model_best.pth.tar"))
    assert rc == 2 and "--data" in err


def test_simulate_energy_json_and_plots(tmp_path, capsys):
    plots = tmp_path / "plots"
    args = ("simulate", "--energy", "--json", "--calibration", "64", "--plot", str(plots), "--profile", "cmos45nm",
            "--profile", "loihi2", "--profile", "h200_sxm")
    rc, out, err = run_cli(capsys, *args)
    assert rc == 0, err
    energy = json.loads(out)["energy"]
    conventions = {(e["profile"], e["convention"]) for e in energy["estimates"]}
    assert conventions == {("cmos45nm", "paper"), ("cmos45nm", "corrected"), ("cmos45nm", "memory_aware"),
                           ("cmos45nm", "int8_ann"), ("loihi2", "loihi"), ("h200_sxm", "gpu_analytic")}
    for e in energy["estimates"]:
        assert e["total_J"] == pytest.approx(sum(e["per_layer_J"].values()))
    loihi2 = next(e for e in energy["estimates"] if e["profile"] == "loihi2")
    assert loihi2["range_J"][0] < loihi2["total_J"] < loihi2["range_J"][1]  # calibrated: always a range
    gpu = next(e for e in energy["estimates"] if e["profile"] == "h200_sxm")
    assert gpu["batch_1"]["batch"] == 1 and gpu["throughput"]["batch"] == 256
    assert energy["gpu_measured"]["kind"] in ("measured", "unavailable")
    files = sorted(p.name for p in plots.iterdir())
    assert len(files) == 6 and all((plots / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)
    first = {f: (plots / f).read_bytes() for f in files}
    run_cli(capsys, *args)
    assert {f: (plots / f).read_bytes() for f in files} == first, "same input must give the same bytes"


def test_simulate_energy_table_and_bad_profile(tmp_path, capsys):
    rc, out, _ = run_cli(capsys, "simulate", "--energy", "--calibration", "64")
    assert rc == 0 and "Energy per inference" in out and "static" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: per_op\nconstants:\n  e_mac: {value: 4.6, unit: pJ, kind: published}\n")
    rc, _, err = run_cli(capsys, "simulate", "--energy", "--profile", str(bad))
    assert rc == 2 and "constants.e_mac: missing 'source'" in err and err.count("\n") == 1
    rc, _, err = run_cli(capsys, "simulate", "--profile", "loihi")
    assert rc == 2 and "need --energy" in err


def test_simulate_and_report_take_a_netx_network(capsys, tmp_path):
    pack = PILOTNET
    net, frame = str(pack / "network.net"), pack / "image.npy"
    chw = tmp_path / "frames.npz"  # a batch of two in [B, C, H, W]: the same frame twice
    np.savez(chw, x=np.stack([np.load(frame).transpose(2, 1, 0)] * 2))
    rc, out, err = run_cli(capsys, "simulate", net, "--data", str(frame), "--energy", "--profile", "loihi2",
                           "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["samples"] == 1 and "agreement" not in data
    (loihi2,) = data["energy"]["estimates"]
    assert loihi2["range_J"][0] < loihi2["total_J"] < loihi2["range_J"][1]
    assert data["energy"]["gpu_measured"]["kind"] == "unavailable"
    rc, out, err = run_cli(capsys, "simulate", net, "--data", str(chw), "--json")
    assert rc == 0, err
    again = json.loads(out)
    assert again["samples"] == 2
    assert again["totals_per_inference"]["sops"] == pytest.approx(data["totals_per_inference"]["sops"])
    rc, out, err = run_cli(capsys, "report", net, "--data", str(frame), "--format", "json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["model"]["name"] == "network.net (lava-dl netx)" and report["totals"]["neurons"] == 158_509


@pytest.mark.parametrize("args,message", [
    ((), "needs --data"),
    (("--data", "FRAME", "--weight-bits", "4"), "--weight-bits does not apply to a netx network"),
    (("--data", "GT"), "must be numeric"),
    (("--data", "NET"), "expected a .npy or .npz"),
])
def test_netx_bad_input_is_one_line(capsys, args, message):
    pack = PILOTNET
    paths = {"FRAME": pack / "image.npy", "GT": pack / "conv-0.npy", "NET": pack / "network.net"}
    rc, out, err = run_cli(capsys, "simulate", str(pack / "network.net"), *(str(paths.get(a, a)) for a in args))
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_netx_export_verify_and_report(tmp_path, capsys):
    pack = PILOTNET
    rc, text, err = run_cli(capsys, "info", str(pack / "network.net"), "--json")
    info = json.loads(text)
    assert rc == 0 and info["neurons"] == 158_509 and info["weights"] == 349_998 and len(info["layers"]) == 10
    out = tmp_path / "pilotnet.deploy"
    rc, _, err = run_cli(capsys, "export", str(pack / "network.net"), "-o", str(out), "--T", "2")
    assert rc == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["targets"] == ["loihi2"] and manifest["source"]["netx"] == "network.net"
    rc, out_text, err = run_cli(capsys, "verify", str(out), "--data", str(pack / "image.npy"), "--json")
    assert rc == 0, err
    result = json.loads(out_text)
    assert result["ok"] and result["spikes_equal"] and len(result["layers"]) == 10  # Lava == simulator, every layer
    rc, _, err = run_cli(capsys, "verify", str(out))
    assert rc == 2 and "give its frames with --data" in err
    rc, report, err = run_cli(capsys, "report", str(out), "--data", str(pack / "image.npy"), "--format", "json")
    assert rc == 0, err
    assert json.loads(report)["totals"]["neurons"] == 158_509
    for bad, needle in ((("--target", "onnx"), "--target onnx does not apply"),
                        (("--weight-bits", "4"), "--weight-bits does not apply")):
        rc, _, err = run_cli(capsys, "export", str(pack / "network.net"), "-o", str(tmp_path / "x"), *bad)
        assert rc == 2 and needle in err and not (tmp_path / "x").exists()
