"""Regenerate the calibrated constants of hw_profiles/loihi2.yaml from the PilotNet pack (calibration/).

    .venv/bin/python scripts/calibrate_loihi2.py          # rewrite the profile
    .venv/bin/python scripts/calibrate_loihi2.py --check  # exit 1 if the profile differs from what the pack gives

What is calibrated, and what is assumed, is in spikformer_deploy/calibration.py.
"""
import sys

import yaml

from spikformer_deploy.analysis import load_profile
from spikformer_deploy.analysis.profiles import PROFILE_DIR
from spikformer_deploy.calibration import calibrate_loihi2, pilotnet_activity

PATH = PROFILE_DIR / "loihi2.yaml"


def replace_constants(text: str, entries: dict) -> str:
    """The profile's text with each named constant's block replaced (the rest of the file as written)."""
    lines = text.splitlines(keepends=True)
    for key, entry in entries.items():
        block = yaml.safe_dump({key: entry}, sort_keys=False, allow_unicode=True, width=116)
        block = "".join("  " + line for line in block.splitlines(keepends=True))
        start = lines.index(f"  {key}:\n")
        end = next(i for i in range(start + 1, len(lines) + 1)
                   if i == len(lines) or (lines[i].startswith("  ") and not lines[i].startswith("   ")))
        lines[start:end] = [block]
    return "".join(lines)


def main() -> int:
    data = yaml.safe_load(PATH.read_text())
    calibrated = calibrate_loihi2(load_profile(PATH))
    changed = {k: v for k, v in calibrated.items() if data["constants"].get(k) != v}
    if "--check" in sys.argv:
        for key in changed:
            print(f"{PATH.name}: {key} differs from the calibration: {calibrated[key]}")
        return 1 if changed else 0
    PATH.write_text(replace_constants(PATH.read_text(), calibrated))
    activity = pilotnet_activity()
    print(f"PilotNet: {activity['synops_per_step']:.4g} synaptic ops per step (hardware counter "
          f"{activity['measured']['counters']['synaptic_ops_per_step']:.3g})")
    for key, c in calibrated.items():
        print(f"{key}: {c['value']:.4g} {c['unit']} ({c['low']:.4g}..{c['high']:.4g}), {c['kind']}")
    print(f"wrote {PATH}" if changed else f"{PATH} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
