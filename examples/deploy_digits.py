"""End to end with the Python API on the bundled digits model: float vs integer, export, Lava check, report.

    .venv/bin/python examples/deploy_digits.py [OUT_DIR]
"""
import sys
from pathlib import Path

from spikformer_deploy import load_checkpoint
from spikformer_deploy.analysis import layer_rows, load_profile
from spikformer_deploy.analysis.report import build_report, to_markdown
from spikformer_deploy.backends.lava import build_network
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.cli import BUNDLED_MODEL
from spikformer_deploy.data import digits_split
from spikformer_deploy.artifact import sha256
from spikformer_deploy.export import export

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/example")
model = load_checkpoint(BUNDLED_MODEL)
x_train, _, x_test, y_test = digits_split(model.config.img_size, seed=0)

# 1. export: integer IR + targets + manifest (calibrated on training images)
export(model, out, ["loihi2", "nir", "onnx"], x_train[:256], force=True,
       source={"checkpoint": BUNDLED_MODEL.name, "sha256": sha256(BUNDLED_MODEL)})

# 2. the integer graph on the simulator, and the same graph as a Lava process graph
network = build_network(out)
graph = network.graph
sim = Simulator(graph, record="spikes").run(x_test[:8])
lava = network.run(x_test[:8].numpy())
same = all((lava.outputs[k] == sim.outputs[k].numpy()).all() for k in lava.outputs)
print(f"Lava vs simulator, 8 images, {len(lava.outputs)} layers: {'identical spikes' if same else 'DIFFERENT'}")

# 3. accuracy of the integer model and the Loihi 2 feasibility verdict
result = Simulator(graph).run(x_test)
print(f"integer top-1 on {len(x_test)} held-out images: {(result.predictions == y_test).double().mean():.2%}")
report = build_report(graph, layer_rows(graph, result.counters), load_profile("loihi2"), load_profile("h200_sxm"),
                      None, "the digits test split")
print(to_markdown(report).splitlines()[2])
