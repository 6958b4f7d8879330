"""Counting conventions against the real counters: NeuroBench 2.3 and syops 0.0.5 run on our float models give the
numbers our definitions compute from the simulator's counts; Spikingformer's fork is checked against its authors'
energy logs (every module's dense ops, the totals, the energy from the logged rates)."""
import json
import math

import pytest
import torch

from support import BUNDLED, REPO, load_family_fixture, load_fixture, run_cli

from spikformer_deploy import load_checkpoint
from spikformer_deploy.analysis import load_profile
from spikformer_deploy.analysis.conventions import conventions, neurobench, syops as syops_convention, syops_modules
from spikformer_deploy.analysis.energy import corrected_energy, paper_energy
from spikformer_deploy.analysis.layers import layer_rows
from spikformer_deploy.analysis.published import SPIKINGFORMER_RENAMES, fork_totals, log_rates, read_syops_log
from spikformer_deploy.analysis.rates import architecture
from spikformer_deploy.api import architecture_graph, rows_from_rates
from spikformer_deploy.backends.sim import Simulator
from spikformer_deploy.data import digits_split
from spikformer_deploy.model.lif import MultiStepLIF
from spikformer_deploy.pipeline import float_graph

LOGS = REPO / "tests" / "fixtures" / "reference" / "spikingformer_energy_logs"
HEADS = {512: 8, 768: 12}
SMALL = {"member": "spikingformer", "dim": 32, "depth": 1, "num_heads": 2, "img_size": 32, "num_classes": 10}


def _models():
    """The bundled model (digits), Spikformer with its integer stream, Spikingformer and SDT with their real-valued
    streams (SDT: a per-step head on spikes)."""
    yield "bundled", load_checkpoint(BUNDLED), digits_split(16)[0][:8]
    model, x, *_ = load_fixture("cifar10")
    yield "spikformer-cifar10", model, x[:4]
    for case in ("spikingformer/cifar10", "sdt/cifar10"):
        model, x, *_ = load_family_fixture(case)
        yield case, model, x[:4]


MODELS = list(_models())


def _float_rows(model, x):
    graph = float_graph(model)
    return graph, layer_rows(graph, Simulator(graph).run(x).counters)


@pytest.mark.parametrize("name,model,x", MODELS, ids=[m[0] for m in MODELS])
def test_neurobench_counts_equal_ours(name, model, x):
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    net = TorchModel(model.eval())
    net.register_hooks()
    with torch.no_grad():
        preds = net(x.float())
    theirs = SynapticOperations()(net, preds, (x.float(), torch.zeros(len(x))))
    ours = neurobench(*reversed(_float_rows(model, x))).total
    assert theirs["Dense"] == pytest.approx(ours.dense, rel=1e-12)
    assert theirs["Effective_MACs"] == pytest.approx(ours.macs, rel=1e-9)
    assert theirs["Effective_ACs"] == pytest.approx(ours.acs, rel=1e-9)
    assert ours.acs > 0 and ours.macs > 0


class _OneByOne:
    """syops' data loader protocol, one sample per batch: its nn.Linear bias is counted once per call."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __iter__(self):
        for i in range(len(self.x)):
            yield self.x[i:i + 1].float(), None


@pytest.mark.parametrize("name,model,x", MODELS, ids=[m[0] for m in MODELS])
def test_syops_counts_equal_ours(name, model, x):
    import syops
    from syops.ops import LIF_syops_counter_hook

    # our LIF module is not spikingjelly's: give it the library's own LIF hook
    (dense, acs, macs, _), _ = syops.get_model_complexity_info(
        model.eval(), tuple(x.shape[1:]), _OneByOne(x), as_strings=False, print_per_layer_stat=False,
        custom_modules_hooks={MultiStepLIF: LIF_syops_counter_hook})
    ours = syops_convention(*reversed(_float_rows(model, x))).total
    assert dense == pytest.approx(ours.dense, rel=1e-12)
    assert macs == pytest.approx(ours.macs, rel=1e-12)
    assert acs == pytest.approx(ours.acs, rel=1e-6)  # syops takes each rate from a float32 mean


def test_energy_conventions_price_the_convention_counts():
    """The per-op profile's paper and corrected energies are the paper's and our convention's counts at 4.6 / 0.9 pJ;
    the Spikformer stream's two Nspks_max settings differ only on the layers that read it."""
    model, x, *_ = load_fixture("cifar10")
    graph, rows = _float_rows(model, x[:4])
    cmos = load_profile("cmos45nm")
    by_name = {c.name: c for c in conventions(rows, graph)}
    assert set(by_name) == {"ours", "spikformer_paper", "spikingformer_nspks1", "spikingformer_nspks4", "neurobench",
                            "syops"}
    assert by_name["ours"].energy(cmos) == pytest.approx(corrected_energy(rows, graph, cmos).total, rel=1e-12)
    assert by_name["spikformer_paper"].energy(cmos) == pytest.approx(paper_energy(rows, graph, cmos).total, rel=1e-12)
    one, all_values = by_name["spikingformer_nspks1"].per_layer, by_name["spikingformer_nspks4"].per_layer
    bounds = graph.value_bounds()
    for name, count in one.items():
        node = graph.nodes.get(name)
        reads_stream = (node is not None and node.op.synapse and graph.nodes[node.inputs[0]].op.type != "Input"
                        and 1 < bounds[node.inputs[0]] < math.inf)
        assert (count != all_values[name]) == reads_stream, name


def _log_graph(dim: int, size: str):
    log = read_syops_log(LOGS / f"Spikingformer-{size}_log.txt")
    if size == "8-512":
        log = log.renamed(SPIKINGFORMER_RENAMES)
    graph = architecture_graph(architecture({"member": "spikingformer", "dim": dim, "depth": 8,
                                             "num_heads": HEADS[dim]}))
    return log, graph


@pytest.mark.parametrize("size", ["8-512", "8-768"])
def test_spikingformer_logs_recounted(size):
    """Every one of the log's 171 modules has our dense ops exactly; syops' totals follow; the fork's energy
    follows from the log's own lists and, through the architecture run at the logged rates, from ours."""
    log, graph = _log_graph(int(size.split("-")[1]), size)
    rows = rows_from_rates(graph, log_rates(log, graph))
    ours = {m.name: m for m in syops_modules(rows, graph, linear_bias="leading")}
    assert len(log.modules) == len(ours) == 171
    assert {m.name: m.dense for m in log.modules} == {k: m.dense for k, m in ours.items()}
    assert sum(m.dense for m in syops_modules(rows, graph)) == log.nops[0]
    total = syops_convention(rows, graph).total
    assert total.macs == log.nops[2]
    assert total.acs == pytest.approx(log.nops[1], rel=1e-5)
    macs, acs = fork_totals(log)  # from the log's lists, printed to 9 digits
    assert (4.6 * macs + 0.9 * acs) * 1e-9 == pytest.approx(log.energy_mJ, rel=1e-9)
    fork = next(c for c in conventions(rows, graph) if c.name == "spikingformer_nspks1")
    assert fork.total.macs == pytest.approx(log.macs, rel=1e-12)
    assert fork.total.acs == pytest.approx(log.acs, rel=1e-5)
    assert fork.energy(load_profile("cmos45nm")) * 1e3 == pytest.approx(log.energy_mJ, rel=1e-5)


def test_forced_rates_fire_exactly():
    log, graph = _log_graph(512, "8-512")
    rates = log_rates(log, graph)
    rows = {r.name: r for r in rows_from_rates(graph, rates)}
    for name, rate in rates.items():
        r = rows[name]
        assert r.spikes == round(rate * r.neuron_updates), name


def _rates_file(tmp_path, rates):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"architecture": SMALL, "rates": rates}))
    return path


def test_estimate_from_rates_cli(capsys, tmp_path):
    graph = architecture_graph(architecture(SMALL))
    lifs = [n.name for n in graph.having("spiking") if n.op.type == "LIF"]
    path = _rates_file(tmp_path, {n: 0.1 for n in lifs})
    rc, out, err = run_cli(capsys, "estimate", str(path), "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["kind"] == "estimate from rates, not event-driven"
    assert result["counting_conventions"]["kind"] == result["kind"]
    names = [c["name"] for c in result["counting_conventions"]["conventions"]]
    assert names == ["ours", "spikformer_paper", "spikingformer_nspks1", "neurobench", "syops"]
    rates = {x["name"]: x["firing_rate"] for x in result["layers"] if x["op"] == "LIF"}
    assert rates == {n: pytest.approx(0.1, abs=1e-3) for n in lifs}
    assert result["target"]["energy"][0]["convention"] == "loihi"
    rc, out, err = run_cli(capsys, "estimate", str(path))
    assert rc == 0 and "ESTIMATE FROM RATES, NOT EVENT-DRIVEN" in out and "Counting conventions" in out


@pytest.mark.parametrize("rates,message", [
    ({}, "no rate for"), ({"patch_embed.proj1_lif": 12.0}, "outside 0..1"),
    ({"patch_embed.proj_conv": 0.1}, "do not spike")])
def test_estimate_rejects_bad_rates(capsys, tmp_path, rates, message):
    graph = architecture_graph(architecture(SMALL))
    full = {n.name: 0.1 for n in graph.having("spiking") if n.op.type == "LIF"} if message != "no rate for" else {}
    rc, out, err = run_cli(capsys, "estimate", str(_rates_file(tmp_path, {**full, **rates})))
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_simulate_energy_shows_every_convention(capsys):
    rc, out, err = run_cli(capsys, "simulate", "--energy", "--profile", "cmos45nm", "--samples", "8", "--json")
    assert rc == 0, err
    result = json.loads(out)
    table = result["energy"]["counting_conventions"]
    assert table["kind"] == "event-driven counts" and table["profile"] == "cmos45nm"
    by_name = {c["name"]: c for c in table["conventions"]}
    assert list(by_name) == ["ours", "spikformer_paper", "spikingformer_nspks1", "spikingformer_nspks4",
                             "neurobench", "syops"]
    corrected = next(e for e in result["energy"]["estimates"] if e["convention"] == "corrected")
    assert by_name["ours"]["energy_J"] == pytest.approx(corrected["total_J"], rel=1e-12)
    for c in by_name.values():  # each says what it is, where it comes from, and what it does with each kind of op
        assert c["definition"] and c["source"] and set(c["treatment"]) == {"attention", "integer_inputs", "pooling",
                                                                              "bias", "neurons"}
        assert c["energy_constants"]["e_mac"]["source"].startswith("Horowitz")
    assert by_name["ours"]["by_layer_kind"]["attention"] > 0 == by_name["neurobench"]["by_layer_kind"]["attention"]


def test_rates_from_a_csv_beside_the_json(capsys, tmp_path):
    """The rates file may name a layer,rate CSV instead of inline rates: the same estimate either way."""
    graph = architecture_graph(architecture(SMALL))
    lifs = {n.name: 0.05 * (i % 4 + 1) for i, n in enumerate(graph.having("spiking")) if n.op.type == "LIF"}
    inline = _rates_file(tmp_path, lifs)
    (tmp_path / "r.csv").write_text("layer,rate\n" + "".join(f"{k},{v}\n" for k, v in lifs.items()))
    beside = tmp_path / "csv.json"
    beside.write_text(json.dumps({**json.loads(inline.read_text()), "rates": {}, "rates_csv": "r.csv"}))
    results = []
    for path in (inline, beside):
        rc, out, err = run_cli(capsys, "estimate", str(path), "--json")
        assert rc == 0, err
        results.append(json.loads(out))
    assert results[0]["counting_conventions"] == results[1]["counting_conventions"]
    (tmp_path / "r.csv").write_text("name,value\nx,1\n")
    rc, _, err = run_cli(capsys, "estimate", str(beside))
    assert rc == 2 and "needs the columns layer,rate" in err
