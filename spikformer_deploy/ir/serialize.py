"""The deploy graph on disk: ``graph.json`` (structure, attributes, pass records) + ``params.safetensors`` (arrays).

Arrays are keyed ``<node>/<field>``; the JSON never holds array data, so diffs stay readable. Same graph -> same
bytes: keys are sorted and floats written by ``json`` (shortest round-trip repr).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import GraphError
from .graph import Graph, PassRecord, _jsonable
from .ops import OP_TYPES

FORMAT = "spikformer-deploy-ir"
VERSION = 2  # 2: the graph is self-contained (dialect, T on the input node); the model config is metadata
GRAPH_FILE = "graph.json"
PARAMS_FILE = "params.safetensors"


def graph_to_json(graph: Graph) -> str:
    nodes = []
    for n in graph.nodes.values():
        nodes.append({"name": n.name, "op": n.op.type, "inputs": list(n.inputs), "shape": list(n.shape),
                      "attributes": _jsonable(n.op.attributes()), "arrays": sorted(n.op.arrays()),
                      "meta": _jsonable(n.meta)})
    data = {"format": FORMAT, "version": VERSION, "dialect": graph.dialect, "meta": _jsonable(graph.meta),
            "nodes": nodes,
            "records": [{"name": r.name, "settings": _jsonable(r.settings), "nodes": _jsonable(r.nodes)}
                        for r in graph.records]}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def graph_arrays(graph: Graph) -> dict[str, np.ndarray]:
    return {f"{n.name}/{k}": np.ascontiguousarray(v) for n in graph.nodes.values() for k, v in n.op.arrays().items()}


def save_graph(graph: Graph, directory: Path) -> list[Path]:
    from safetensors.numpy import save_file

    directory = Path(directory)
    (directory / GRAPH_FILE).write_text(graph_to_json(graph))
    arrays = graph_arrays(graph)
    save_file(dict(sorted(arrays.items())), str(directory / PARAMS_FILE), metadata={"format": FORMAT})
    return [directory / GRAPH_FILE, directory / PARAMS_FILE]


def load_graph(directory: Path) -> Graph:
    from safetensors.numpy import load_file

    directory = Path(directory)
    try:
        data = json.loads((directory / GRAPH_FILE).read_text())
        arrays = load_file(str(directory / PARAMS_FILE))
    except FileNotFoundError as exc:
        raise GraphError(f"{directory}: missing {Path(exc.filename).name}") from None
    except Exception as exc:
        raise GraphError(f"{directory}: unreadable graph ({str(exc).splitlines()[0]})") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise GraphError(f"{directory / GRAPH_FILE}: not a {FORMAT} v{VERSION} file")
    graph = Graph(data["dialect"], data["meta"])
    for entry in data["nodes"]:
        cls = OP_TYPES.get(entry["op"])
        if cls is None:
            raise GraphError(f"{directory / GRAPH_FILE}: unknown op {entry['op']!r} at {entry['name']}")
        fields = dict(entry["attributes"])
        for key in entry["arrays"]:
            name = f"{entry['name']}/{key}"
            if name not in arrays:
                raise GraphError(f"{directory / PARAMS_FILE}: missing array {name}")
            fields[key] = arrays[name]
        graph.add(entry["name"], cls(**fields), entry["inputs"], **entry["meta"])
        if list(graph.nodes[entry["name"]].shape) != entry["shape"]:
            raise GraphError(f"{directory / GRAPH_FILE}: {entry['name']} has shape {entry['shape']}, "
                             f"its op gives {list(graph.nodes[entry['name']].shape)}")
    graph.records = [PassRecord(r["name"], r["settings"], r["nodes"]) for r in data["records"]]
    graph.validate()
    return graph
