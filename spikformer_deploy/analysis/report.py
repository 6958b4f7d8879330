"""The feasibility report: mapping, constraints, performance and energy, as a dict and as Markdown or HTML."""
from __future__ import annotations

import base64
import io
import math

from ..ir import Graph
from ..model.config import MEMBERS
from .conventions import EVENT_DRIVEN, conventions_report
from .energy import estimate
from .feasibility import check_constraints, map_network, performance, verdict
from .layers import LayerStats
from .profiles import Profile, load_profile


def build_report(graph: Graph, rows: list[LayerStats], profile: Profile, gpu: Profile | None, chips_budget: int | None,
                 data_note: str, counts_kind: str = EVENT_DRIVEN) -> dict:
    """``counts_kind``: what ``rows`` are (a simulator run's counts, or an estimate from rates)."""
    mapping = map_network(graph, profile)
    checks = check_constraints(graph, profile, mapping, rows)
    perf = performance(graph, profile, mapping, rows)
    state, reasons = verdict(checks, mapping, chips_budget)
    energy = [e.to_dict() for e in estimate(rows, graph, profile, mapping)]
    if gpu is not None:
        energy += [e.to_dict() for e in estimate(rows, graph, gpu)]
    cfg = graph.meta.get("model", {})  # the source model's description, where the graph came from one
    return {
        "model": {"name": _model_name(cfg), "variant": cfg.get("variant"), "depth": cfg.get("depth"),
                  "dim": cfg.get("dim"), "heads": cfg.get("num_heads"), "T": graph.steps,
                  "input": list(graph.input.op.shape)},
        "target": {"profile": profile.name, "title": profile.title, "chips_budget": chips_budget},
        "verdict": {"state": state, "reasons": reasons},
        "data": data_note,
        "totals": {"neurons": mapping["neurons"], "synapses": mapping["synapses"], "cores": mapping["cores"],
                   "chips": mapping["chips"], "system": mapping["system"]},
        "groups": [vars(g) for g in mapping["groups"]],
        "folds": folds(graph),
        "checks": [vars(c) for c in checks],
        "performance": perf,
        "energy": energy,
        "counting_conventions": conventions_report(rows, graph, load_profile("cmos45nm"), counts_kind),
        "limits": {k: c.to_dict() for k, c in profile.constants.items()},
        "layers": [r.to_dict() for r in rows],
    }


def placement_summary(name: str, report: dict) -> dict:
    """One row of the attention placements side by side: a placement's report reduced to what differs."""
    p, t = report["performance"], report["totals"]
    loihi = next(e for e in report["energy"] if e["profile"] == report["target"]["profile"])
    return {"placement": name, "neurons": t["neurons"], "synapses": t["synapses"], "cores": t["cores"],
            "chips": t["chips"], "pipeline_depth": p["pipeline_depth"], "step_latency_s": p["step_latency_s"],
            "step_latency_range_s": p["step_latency_range_s"], "bound_by": p["bound_by"],
            "latency_s": p["latency_s"], "latency_range_s": [p["time_steps"] * s for s in p["step_latency_range_s"]],
            "energy_J": loihi["total_J"], "energy_range_J": loihi.get("range_J"), "verdict": report["verdict"]["state"]}


def folds(graph: Graph) -> list[dict]:
    """What the passes folded before the mapping: each chain of synapses folded into one conv or kept apart on
    relays, with the mapper's costs of both forms (``fold_linear_chains``), and the heads folded into one."""
    chains = graph.record("fold_linear_chains")
    out = [{"fold": "chain", "last": last, **entry} for last, entry in (chains.nodes if chains else {}).items()]
    heads = graph.record("fold_heads")
    if heads:
        out.append({"fold": "heads", **heads.settings})
    return out


def fold_reason(f: dict) -> str:
    """Why the form of a chain was chosen, in words."""
    if "cores_folded" not in f:
        return "forced"
    costs = f"{f['cores_folded']} cores folded, {f['cores_apart']} apart ({f['profile']})"
    if f["form"] != f["choice"]:
        return f"{costs}: forced"
    if f["form"] == "folded" and not f["apart_keeps_precision"]:
        return f"{costs}: apart would lose the 8-bit weights' precision (relays into one LIF's range)"
    return f"{costs}: fewer cores" if f["cores_folded"] != f["cores_apart"] else f"{costs}: a tie, one hop"


def _model_name(model: dict) -> str:
    """What the graph came from, from its metadata: a family member's configuration or a netx file."""
    if "variant" in model:
        title = MEMBERS[model.get("member", "spikformer")]  # configs from before the family lack the member
        return f"{title} {model['depth']}-{model['dim']} ({model['variant']})"
    return f"{model.get('file', 'network')} ({model.get('source', 'deploy graph')})"


STEP_TERMS = {"neurocores": "busiest neurocore: max(synaptic ops x t_synop, neuron passes x t_neuron)",
              "embedded": "attention on the embedded x86 cores (unvalidated: no public figure for these cores)",
              "barrier": "barrier synchronisation at the end of every step (Intel's latency model)",
              "interchip": "the busiest chip's spike bits over its chip-to-chip link"}


def step_terms(p: dict) -> list[tuple[str, float, str]]:
    """(term, seconds, what it is) of the step: max(neurocores, embedded) + barrier + interchip."""
    return [(k, p["step_terms_s"][k], STEP_TERMS[k] + (" <- bounds the step" if k == p["bound_by"] else ""))
            for k in STEP_TERMS]


def _fmt_time(s):
    return "n/a" if s is None else f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def to_markdown(r: dict) -> str:
    t, p, m = r["totals"], r["performance"], r["model"]
    lines = [f"# Feasibility: {m['name']} on {r['target']['title']}", "",
             f"**Verdict: {r['verdict']['state']}**" + (":" if r["verdict"]["reasons"] else "")]
    lines += [f"- {x}" for x in r["verdict"]["reasons"]]
    lines += ["", f"{t['neurons']:,} neurons, {t['synapses']:,} synapses -> {t['cores']} cores, {t['chips']} chip(s): "
              f"{t['system']}.", "", f"Data for rates and state ranges: {r['data']}.", "", "## Constraints", "",
              "| check | status | finding | change |", "| --- | --- | --- | --- |"]
    for c in r["checks"]:
        lines.append(f"| {c['name']} | {c['status']} | {c['message']} | {c['fix']} |")
    low, high = p["step_latency_range_s"]
    lines += placements_markdown(r)
    lines += ["", "## Performance (estimate)", "",
              f"- time steps per inference: {p['time_steps']} (T = {m['T']} + pipeline depth {p['pipeline_depth']})",
              f"- step latency: {_fmt_time(p['step_latency_s'])} ({_fmt_time(low)}–{_fmt_time(high)}); bound by "
              f"{p['bound_by']} (slowest neuron group: {p['slowest_group']})",
              f"- latency per inference: {_fmt_time(p['latency_s'])}; inferences/s: "
              f"{p['inferences_per_s'] or 0:,.0f} (pipelined: {p['pipelined_inferences_per_s'] or 0:,.0f})", "",
              "| step term | time | what |", "| --- | ---: | --- |"]
    lines += [f"| {term} | {_fmt_time(t)} | {what} |" for term, t, what in step_terms(p)]
    lines += ["", f"Traffic across chip boundaries: {len(p['interchip_boundaries'])} boundaries"
              + (" (the busiest 10):" if len(p["interchip_boundaries"]) > 10 else ":" if p["interchip_boundaries"]
                 else " (one chip)."), ""]
    if p["interchip_boundaries"]:
        lines += ["| from chip | to chip | spikes per step | bits per step |", "| ---: | ---: | ---: | ---: |"]
        lines += [f"| {b['from_chip']} | {b['to_chip']} | {b['spikes_per_step']:,.1f} | {b['bits_per_step']:,.0f} |"
                  for b in p["interchip_boundaries"][:10]]
    lines += ["", "## Energy per inference", "", "| profile | convention | energy | dynamic | static | kind |",
              "| --- | --- | --- | --- | --- | --- |"]
    for e in r["energy"]:
        kind = "measured" if e.get("kind") == "measured" else "calibrated (range)" if "range_J" in e else "estimate"
        split = [joules_range(e[f"{k}_J"], e.get(f"{k}_range_J")) if f"{k}_J" in e else "" for k in ("dynamic",
                                                                                                      "static")]
        lines.append(f"| {e['profile']} | {e['convention']} | {joules_range(e['total_J'], e.get('range_J'))} | "
                     f"{split[0]} | {split[1]} | {kind} |")
    lines += [f"- {e['profile']}: {a}" for e in r["energy"] for a in e["assumptions"]
              if a.startswith("static > dynamic")]
    lines += conventions_markdown(r["counting_conventions"])
    chains = [f for f in r["folds"] if f["fold"] == "chain"]
    if chains:
        lines += ["", "## Chains of synapses: folded or kept apart", "",
                  "| chain (last synapse) | synapses in chain | form | weights folded / apart | synapses folded / apart "
                  "| why |", "| --- | ---: | --- | --- | --- | --- |"]
        lines += [f"| {f['last']} | {len(f['chain'])} | {f['form']} | {f.get('weights_folded', '–')} / "
                  f"{f['weights_apart']:,} | {f.get('synapses_folded', '–')} / {f.get('synapses_apart', '–')} | "
                  f"{fold_reason(f)} |" for f in chains]
    lines += [f"- distillation head averaged into the head: {f['parameters_removed']:,} parameters fewer"
              for f in r["folds"] if f["fold"] == "heads"]
    lines += ["", "## Mapping", "", "| group | neurons | fan-in | synapses | cores | limited by |",
              "| --- | ---: | ---: | ---: | ---: | --- |"]
    for g in r["groups"]:
        lines.append(f"| {g['name']} | {g['neurons']:,} | {g['fan_in']:,} | {g['synapses']:,} | {g['cores']} | "
                     f"{g['limited_by']} |")
    lines += ["", "## Limits used", "", "| limit | value | kind | source |", "| --- | --- | --- | --- |"]
    for k, v in r["limits"].items():
        lines.append(f"| {k} | {v['value']:g} {v['unit']} | {v['kind']} | {v['source']} |")
    return "\n".join(lines) + "\n"


def placements_markdown(r: dict) -> list[str]:
    """The attention's placements side by side (``--attention``), and which one the report describes."""
    pl = r.get("placements")
    if not pl:
        return []
    lines = ["", "## Attention placement", "", f"This report describes **{pl['chosen']}**: {pl['why']}.", "",
             "| placement | neurons | cores | chips | pipeline depth | step latency | latency per inference | "
             f"energy ({r['target']['profile']}) | verdict |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |"]
    for row in pl["rows"]:
        low, high = row["step_latency_range_s"]
        lat_low, lat_high = row["latency_range_s"]
        lines.append(f"| {row['placement']} | {row['neurons']:,} | {row['cores']:,} | {row['chips']} | "
                     f"{row['pipeline_depth']} | {_fmt_time(row['step_latency_s'])} ({_fmt_time(low)}–"
                     f"{_fmt_time(high)}; {row['bound_by']}) | {_fmt_time(row['latency_s'])} ({_fmt_time(lat_low)}–"
                     f"{_fmt_time(lat_high)}) | {joules_range(row['energy_J'], row['energy_range_J'])} | "
                     f"{row['verdict']} |")
    lines.append("- embedded: Q Kᵀ V on the embedded x86 cores (no public toolchain builds their program; their "
                 "speed and energy per op are estimates); neurocores: AND, count and product neurons on standard "
                 "lava.proc processes, four more synapse hops per block (AND, count, product, sum)")
    return lines


def conventions_markdown(report: dict) -> list[str]:
    """The counting conventions side by side (``analysis.conventions``), as Markdown lines."""
    c0 = report["conventions"]
    kinds = list(c0[0]["by_layer_kind"]) if c0 else []
    lines = ["", f"## Counting conventions ({report['kind']}; energy at {report['profile']}'s E_MAC / E_AC)", "",
             "| convention | dense | MACs | ACs | energy | attention | integer / real inputs | pooling | bias | "
             "neurons | source |", "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | --- |"]
    for c in c0:
        t = c["treatment"]
        lines.append(f"| {c['title']} | {c['dense']:,.0f} | {c['macs']:,.0f} | {c['acs']:,.0f} | "
                     f"{joules(c['energy_J'])} | {t['attention']} | {t['integer_inputs']} | {t['pooling']} | "
                     f"{t['bias']} | {t['neurons']} | {c['source']} |")
    lines += ["", "Ops (MACs + ACs) each convention counts, by kind of layer:", "",
              "| convention | " + " | ".join(kinds) + " |", "| --- |" + " ---: |" * len(kinds)]
    lines += [f"| {c['title']} | " + " | ".join(f"{c['by_layer_kind'][k]:,.0f}" for k in kinds) + " |" for c in c0]
    lines += [""] + [f"- {c['title']}: {c['definition']}" + "".join(f"; {n}" for n in c["notes"]) for c in c0]
    return lines


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode()


def plots(r: dict) -> dict[str, str]:
    """Base64 PNGs: cores per group, firing rates, SOPs and energy per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    series = {
        "cores per neuron group": [(g["name"], g["cores"]) for g in r["groups"]],
        "firing rate": [(x["name"], x["firing_rate"]) for x in r["layers"] if "firing_rate" in x],
        "SOPs per inference": [(x["name"], x["sops"]) for x in r["layers"] if x["sops"]],
        "energy per inference (µJ), " + r["energy"][0]["profile"]:
            [(k, v * 1e6) for k, v in r["energy"][0]["per_layer_J"].items()],
    }
    for title, pairs in series.items():
        fig, ax = plt.subplots(figsize=(7, 0.2 * len(pairs) + 1.0))
        ax.barh(range(len(pairs)), [v for _, v in pairs], color="#4c72b0")
        ax.set_yticks(range(len(pairs)), [n for n, _ in pairs], fontsize=6)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        out[title] = _png(fig)
        plt.close(fig)
    return out


VERDICT_CLASS = {"fits": "fits", "fits with changes": "changes", "does not fit": "nofit"}


def joules(value: float) -> str:
    for unit, scale in (("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)):
        if abs(value) >= scale:
            return f"{value / scale:.3f} {unit}"
    return f"{value:.3g} J"


def joules_range(value: float, spread: list | None) -> str:
    """An energy with its range, where it has one."""
    return joules(value) + (f" ({joules(spread[0])}–{joules(spread[1])})" if spread else "")


def _energy_kind(e: dict) -> str:
    return "measured" if e.get("kind") == "measured" else "calibrated" if "range_J" in e else "estimate"


def to_html(r: dict) -> str:
    """One self-contained page (inline CSS, plots as data URIs; no network), rendered by Jinja2 with autoescaping
    from ``templates/report.html``: the same content as the Markdown and JSON."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("spikformer_deploy.analysis", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.html").render(
        r=r, p=r["performance"], verdict_class=VERDICT_CLASS[r["verdict"]["state"]], figures=plots(r),
        time=_fmt_time, joules=joules, joules_range=joules_range, energy_kind=_energy_kind, fold_reason=fold_reason,
        step_terms=step_terms(r["performance"]))


def json_safe(x):
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
