"""Deploy a checkpoint to Loihi 2 with the Python API: calibrate and export (Lava / netx, NIR, ONNX), then run the
exported Lava process graph against the bit-accurate simulator, spike for spike.

    python examples/deploy_checkpoint.py [CHECKPOINT] [--data DATA] [--out DIR] [--samples N]

CHECKPOINT: an original Spikformer checkpoint or one of ours (default: the bundled digits model). Without --data the
bundled model's data set is used (training split to calibrate on, test split to compare on).
"""
import argparse
import sys
from pathlib import Path

import spikformer_deploy as sd

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint", nargs="?", type=Path, default=None)
parser.add_argument("--data", type=Path, default=None, help="inputs to calibrate and compare on")
parser.add_argument("--out", type=Path, default=Path("out/example.deploy"))
parser.add_argument("--samples", type=int, default=4, help="inputs Lava runs (a few seconds each)")
args = parser.parse_args()

try:
    path = args.checkpoint or sd.bundled_model("digits")
    model = sd.load_checkpoint(path)
    if args.data is not None:
        x, _ = sd.load_data(args.data, model.config)
        x_cal, x_test = x[:256], x
    else:
        x_cal, _, x_test, _ = sd.bundled_data(model)
    manifest = sd.export(model, args.out, ["loihi2", "nir", "onnx"], x_cal[:256], force=True,
                         source={"checkpoint": Path(path).name})
    print(f"exported {args.out}: {', '.join(manifest['files'])}")
    check = sd.verify_on_lava(args.out, x_test[:args.samples])
except sd.DeployError as exc:
    sys.exit(f"error: {exc}")
same = sum(layer["equal"] == layer["total"] for layer in check["layers"].values())
print(f"Lava (Loihi2SimCfg, fixed_pt) vs simulator on {check['samples']} inputs: {same}/{len(check['layers'])} layers "
      f"spike for spike, predictions {'equal' if check['predictions_equal'] else 'DIFFER'}"
      + (f", netx stem {'equal' if check['netx_stem_equal'] else 'DIFFERS'}" if "netx_stem_equal" in check else ""))
sys.exit(0 if check["ok"] else 1)
