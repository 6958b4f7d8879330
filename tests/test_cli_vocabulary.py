"""The shared options do what they say in the commands that gained them: train on --data, export's --samples and
--calibration-data, report's quantization options (and their refusal where the integers are given), --json
everywhere, bundled models by name."""
import json

import numpy as np

from support import BUNDLED, run_cli

from spikformer_deploy.data import digits_split


def digits_npz(tmp_path, n=60):
    x, y, _, _ = digits_split(16, seed=0)
    path = tmp_path / "digits.npz"
    np.savez(path, x=x[:n].numpy(), y=y[:n].numpy())
    return path


def test_train_on_user_data_holds_out_every_fifth(tmp_path, capsys):
    data = digits_npz(tmp_path)
    rc, out, err = run_cli(capsys, "train", "--data", str(data), "--samples", "30", "--epochs", "1", "--batch", "16",
                           "-o", str(tmp_path / "t.pth"), "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["split"] == {"train": 30, "test": 12, "test_fraction": 0.2, "every_fifth": True}
    assert report["settings"]["batch_size"] == 16 and report["data"] == str(data)
    card = (tmp_path / "t.md").read_text()
    assert "every 5th input held out, 30 train / 12 test" in card
    assert f"spikformer-deploy train --data {data} --samples 30 --epochs 1 --batch 16" in card


def test_export_calibrates_on_the_first_samples_of_its_data(tmp_path, capsys):
    data = digits_npz(tmp_path)
    rc, out, err = run_cli(capsys, "export", "--calibration-data", str(data), "--samples", "20", "--target", "loihi2",
                           "-o", str(tmp_path / "a.deploy"), "--json")
    assert rc == 0, err
    assert json.loads(out)["quantization"]["calibration_samples"] == 20
    rc, _, err = run_cli(capsys, "export", "--data", str(data), "--calibration-data", str(data), "-o",
                         str(tmp_path / "b.deploy"))
    assert rc == 2 and err.startswith("error: export reads one set of inputs")


def test_report_quantizes_as_told_and_refuses_it_for_an_artifact(tmp_path, capsys):
    widths = {}
    for bits in (4, 8):
        rc, out, err = run_cli(capsys, "report", str(BUNDLED), "--samples", "2", "--calibration", "32",
                               "--weight-bits", str(bits), "--json")
        assert rc == 0, err
        widths[bits] = json.loads(out)
    for bits, report in widths.items():
        (precision,) = [c["message"] for c in report["checks"] if c["name"] == "weight precision"]
        assert precision.startswith(f"{bits}-bit mantissas"), precision
    # synapse memory per core scales with the width (the stem's second conv: one core either way)
    assert widths[4]["groups"][1]["synapse_bits_per_core"] * 2 == widths[8]["groups"][1]["synapse_bits_per_core"]
    rc, _, err = run_cli(capsys, "export", "--target", "loihi2", "--calibration", "16", "-o", str(tmp_path / "d"))
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "report", str(tmp_path / "d"), "--weight-bits", "6")
    assert rc == 2 and err == "error: --weight-bits does not apply to an export directory (its integers are given)\n"


def test_bundled_models_by_name(capsys):
    rc, out, err = run_cli(capsys, "info", "fmnist", "--json")
    assert rc == 0, err
    assert json.loads(out)["config"]["depth"] == 2
    rc, _, err = run_cli(capsys, "info", "fmnist2")
    assert rc == 2 and "no bundled model of that name (bundled: digits, fmnist, fmnist-float)" in err
