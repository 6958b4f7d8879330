"""The wheel is the product: built from the checkout, installed into a fresh venv (its dependencies taken from the
suite's environment, not downloaded), it runs `info`, `simulate --energy` and `report` from a directory outside
the checkout, reading its models and profiles as package data."""
import json
import os
import site
import subprocess
import sys
import zipfile

from support import FMNIST_TEST, REPO, RESOURCES


def test_the_wheel_holds_the_package_data_and_runs_outside_the_checkout(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("spikformer_deploy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(REPO)) for p in RESOURCES.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "spikformer_deploy/analysis/templates/report.html" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies: the suite's site-packages, after the venv's own (its .pth files, our editable install among
    # them, are not processed: only the wheel provides spikformer_deploy)
    with open(os.path.join(purelib, "suite_dependencies.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def run(*args):
        done = subprocess.run([str(venv / "bin" / "spikformer-deploy"), *args], cwd=outside, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    info = json.loads(run("info", "--json"))
    assert info["checkpoint"].startswith(purelib) and info["parameters"] == 113_282
    sim = json.loads(run("simulate", "--energy", "--samples", "8", "--json"))
    assert sim["samples"] == 8 and sim["int_accuracy"] > 0.5
    profiles = {e["profile"] for e in sim["energy"]["estimates"]}
    assert {"loihi2", "loihi", "cmos45nm", "h200_sxm"} <= profiles, profiles
    assert all(e["total_J"] > 0 for e in sim["energy"]["estimates"])
    # the tests' Fashion-MNIST subset: the default (Debian's dataset-fashion-mnist) need not be installed
    report = run("report", "fmnist", "--samples", "2", "--data", str(FMNIST_TEST))
    assert "Verdict" in report or "verdict" in report, report[:500]
    assert sorted(p.name for p in outside.iterdir()) == []  # nothing written where it ran
