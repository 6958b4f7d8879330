"""Published counter output, read back: the energy logs of syops-counter and of Spikingformer's fork of it.

A syops log prints the model as a module tree, each module with ``Params, dense Ops (oriMACs), ACs, MACs, input
spike rate`` per sample; Spikingformer's fork adds its conv/linear list at full precision, the SSA shape, the q/k/v
firing rates of every block and its totals (MACs, ACs, energy). ``read_syops_log`` returns all of it;
``log_rates`` turns it into the firing rates of a graph's spiking nodes (``analysis.rates``), so that a published
table is recounted from the rates it was made with.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

_MODULE = re.compile(r"^(\s*)\(([\w.]+)\): (\w+)\(")
_STATS = re.compile(r"([\d.e+-]+) Ops, [\d.]+% oriMACs, ([\d.e+-]+) Ops, [\d.]+% ACs, ([\d.e+-]+) Ops, [\d.]+% MACs, "
                    r"([\d.]+)% Spike Rate")
_LAYER = re.compile(r"^\('([^']+)', .*array\(\[([^\]]+)\]\)\)$", re.M)

# the 8-512 log's model is an older Spikingformer whose tokenizer and MLP modules have other names than today's code
# (whose names the 8-768 log and this project use): same modules, same order
SPIKINGFORMER_RENAMES = {f"patch_embed.{old}": f"patch_embed.{new}" for old, new in {
    "proj_lif": "proj1_lif", "maxpool": "maxpool1", "proj_conv1": "proj1_conv", "proj_bn1": "proj1_bn",
    "proj_lif1": "proj2_lif", "maxpool1": "maxpool2", "proj_conv2": "proj2_conv", "proj_bn2": "proj2_bn",
    "proj_lif2": "proj3_lif", "maxpool2": "maxpool3", "proj_conv3": "proj3_conv", "proj_bn3": "proj3_bn",
    "proj_lif3": "proj4_lif", "maxpool3": "maxpool4", "rpe_conv": "proj4_conv", "rpe_bn": "proj4_bn"}.items()}
SPIKINGFORMER_RENAMES.update({f"mlp.fc{i}_{kind}": f"mlp.mlp{i}_{kind}" for i in (1, 2) for kind in ("conv", "bn", "lif")})


@dataclass(frozen=True)
class LoggedModule:
    name: str  # dotted, as model.named_modules() names it
    type: str
    dense: float
    acs: float
    macs: float
    rate_pct: float  # the hook's input spike rate (LIFs: output rate), 3 decimals in the tree


@dataclass
class SyopsLog:
    path: Path
    modules: list[LoggedModule]  # every hooked module of the tree, in print order
    layers: dict[str, list[float]] = field(default_factory=dict)  # conv/linear list: dense, ACs, MACs, rate %
    ssa_info: dict | None = None
    qkv_rates: list[list[float]] | None = None  # per block: q_lif, k_lif, v_lif output rates
    macs: float | None = None  # totals of the fork's energy (conv/head modules and the SSA formula)
    acs: float | None = None
    energy_mJ: float | None = None
    nops: list[float] | None = None  # syops' own totals over every module: dense, ACs, MACs

    def renamed(self, renames: dict[str, str]) -> "SyopsLog":
        """The same log with module names mapped through ``renames`` (keys: a name or its last dotted components)."""
        def rename(name: str) -> str:
            for old, new in renames.items():
                if name == old or name.endswith("." + old):
                    return name[:len(name) - len(old)] + new
            return name
        return SyopsLog(self.path, [LoggedModule(rename(m.name), m.type, m.dense, m.acs, m.macs, m.rate_pct)
                                    for m in self.modules], {rename(k): v for k, v in self.layers.items()},
                        self.ssa_info, self.qkv_rates, self.macs, self.acs, self.energy_mJ, self.nops)


def _number(text: str) -> float:
    return float(text.split()[0])


def read_syops_log(path: str | Path) -> SyopsLog:
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise DataError(f"cannot read the syops log {path}: {exc.strerror}") from None
    modules, stack = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _MODULE.match(line)
        if not m:
            continue
        depth = len(m.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        stack.append((depth, m.group(2)))
        stats = _STATS.search(line) or (_STATS.search(lines[i + 1]) if i + 1 < len(lines) and
                                        not _MODULE.match(lines[i + 1]) else None)
        if stats:  # a hooked module; containers print no statistics of their own
            name = ".".join(n for _, n in stack)  # the root model prints no "(name): " of its own
            modules.append(LoggedModule(name, m.group(3), *(float(g) for g in stats.groups())))
    if not modules:
        raise DataError(f"{path} holds no syops module statistics (not a syops log?)")
    log = SyopsLog(path, modules)
    for name, values in _LAYER.findall(text):
        log.layers[re.sub(r"\[(\d+)\]", r".\1", name)] = [float(v) for v in values.split(",")]
    info = re.search(r"SSA info: ?\n\s*(\{.*?\})", text)
    rates = re.search(r"Firing rate of Q/K/V inputs in each block: ?\n(\[.*\])", text)
    totals = re.search(r"Number of operations: ([\d.e+-]+) G MACs, ([\d.e+-]+) G ACs", text)
    energy = re.search(r"Energy consumption: ([\d.e+-]+) mJ", text)
    nops = re.search(r"Nops:\s+\[(.*?)\]", text)
    log.ssa_info = ast.literal_eval(info.group(1)) if info else None
    log.qkv_rates = ast.literal_eval(rates.group(1)) if rates else None
    if totals:
        log.macs, log.acs = float(totals.group(1)) * 1e9, float(totals.group(2)) * 1e9
    log.energy_mJ = float(energy.group(1)) if energy else None
    log.nops = [_number(v.strip(" '")) for v in nops.group(1).split(",")] if nops else None
    return log


def log_rates(log: SyopsLog, graph) -> dict[str, float]:
    """Firing rates of the graph's spiking nodes from a log of the same architecture (module names as the graph's):
    a conv's logged input rate is the rate of the spiking node it reads (full precision), the q/k/v list gives
    the attention's LIFs, and the module tree the rest (LIF output rates, 3 decimals)."""
    spiking = {n.name for n in graph.having("spiking")}
    rates = {m.name: m.rate_pct / 100 for m in log.modules if m.type.endswith("LIFNode") and m.name in spiking}
    for name, (_, _, _, rate_pct) in log.layers.items():
        node = graph.nodes.get(name)
        if node is None or rate_pct >= 100:  # the analog image, a pooled head
            continue
        source = graph.nodes[node.inputs[0]]
        while not source.op.spiking:
            source = graph.nodes[source.inputs[0]]
        rates[source.name] = rate_pct / 100
    for block, qkv in enumerate(log.qkv_rates or []):
        for kind, rate in zip("qkv", qkv):
            rates[f"block.{block}.attn.{kind}_lif"] = rate
    return rates


def ssa_formula(q: float, k: float, v: float) -> float:
    """Spikingformer's attention rate factor: fr_q + min(fr_k, fr_v)."""
    return q + min(k, v)


def fork_totals(log: SyopsLog, attention=ssa_formula) -> tuple[float, float]:
    """(MACs, ACs) of Spikingformer's ``get_energy_cost`` recomputed from the log's own lists: each conv/linear at
    100 % rate adds its MACs, any other its ACs; each block adds T*H*N*d_h^2 x ``attention(fr_q, fr_k, fr_v)``."""
    if log.ssa_info is None or log.qkv_rates is None:
        raise DataError(f"{log.path} has no SSA info and q/k/v rates (not a Spikingformer energy log)")
    macs = sum(v[2] for v in log.layers.values() if abs(v[3] - 100) < 1e-4)
    acs = sum(v[1] for v in log.layers.values() if abs(v[3] - 100) >= 1e-4)
    info = log.ssa_info
    base = info["Tsteps"] * info["Nheads"] * info["patchSize"] ** 2 * (info["embSize"] // info["Nheads"]) ** 2
    return macs, acs + sum(base * attention(*qkv) for qkv in log.qkv_rates)
