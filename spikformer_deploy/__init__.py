"""spikformer-deploy: deploy a trained Spikformer to neuromorphic hardware (Loihi 2 via Lava, NIR, ONNX).

The public API (what ``examples/`` uses; everything else is internal and may change):

- models: ``load_checkpoint`` (the original Spikformer layouts and ours), ``save_checkpoint``, ``bundled_model`` /
  ``bundled_models`` (the shipped checkpoints by name), ``bundled_data`` (the data set a bundled model was trained
  on), ``load_data`` (image folders, .npz, .npy, DVS frames), ``spike_counts`` (per-LIF counts under the original
  module names);
- deployment: ``integer_graph`` (calibrate and quantize to Loihi 2 formats), ``export`` (an artifact directory:
  Lava/netx, NIR, ONNX, manifest), ``verify_on_lava`` (Lava against the simulator, spike for spike);
- analyses: ``simulate`` (float and integer side by side, per-layer counts), ``energy`` (every hardware profile),
  ``counting_conventions`` (every published counter's reading of the same counts), ``estimate_from_rates`` (the
  conventions and the Loihi estimate from published firing rates), ``feasibility_report`` (cores, chips, limits, verdict) with ``report_markdown`` / ``report_html``,
  ``load_profile`` / ``builtin_profiles``;
- errors: ``DeployError`` and its kinds (each a one-line message).
"""
from .analysis import EnergyEstimate, Profile, builtin_profiles, load_profile
from .analysis.report import to_html as report_html, to_markdown as report_markdown
from .api import (Simulation, counting_conventions, energy, estimate_from_rates, feasibility_report, simulate,
                  verify_on_lava)
from .bundled import bundled_model, bundled_models
from .data import load_data
from .errors import CheckpointError, ConfigError, DataError, DeployError
from .export import export
from .model import Spikformer, SpikformerConfig, load_checkpoint, save_checkpoint, spike_counts
from .pipeline import integer_graph

__version__ = "0.1.0"


def bundled_data(model):
    """(x_train, y_train, x_test, y_test) of the data set a bundled model was trained on (its checkpoint records
    it); a ``DataError`` for a model that names none."""
    from .bundled import bundled_dataset, bundled_split

    dataset = bundled_dataset(model)
    if not dataset:
        raise DataError("this model records no bundled data set: load your data with load_data")
    return bundled_split(dataset, model.config.img_size)


__all__ = ["load_checkpoint", "save_checkpoint", "bundled_model", "bundled_models", "bundled_data", "load_data",
           "spike_counts", "Spikformer", "SpikformerConfig", "integer_graph", "export", "verify_on_lava", "simulate",
           "Simulation", "energy", "counting_conventions", "estimate_from_rates", "EnergyEstimate", "feasibility_report", "report_markdown", "report_html",
           "load_profile", "builtin_profiles", "Profile", "DeployError", "CheckpointError", "ConfigError", "DataError",
           "__version__"]
