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


def _add_node(graph: Graph, entry: dict, arrays: dict, directory: Path) -> None:
    cls = OP_TYPES.get(entry["op"]) if isinstance(entry.get("op"), str) else None
    if cls is None:
        raise GraphError(f"{directory / GRAPH_FILE}: unknown op {entry.get('op')!r} at {entry.get('name')}")
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


def load_graph(directory: Path) -> Graph:
    from safetensors.numpy import load_file

    directory = Path(directory)
    try:
        data = json.loads((directory / GRAPH_FILE).read_text())
        arrays = load_file(str(directory / PARAMS_FILE))
    except FileNotFoundError as exc:
        raise GraphError(f"{directory}: missing {Path(exc.filename).name}") from None
    except Exception as exc:
        raise GraphError(f"{directory}: unreadable graph ({_first_line(exc)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise GraphError(f"{directory / GRAPH_FILE}: not a {FORMAT} v{VERSION} file")
    try:
        graph = Graph(data["dialect"], data["meta"])
        for entry in data["nodes"]:
            _add_node(graph, entry, arrays, directory)
        graph.records = [PassRecord(r["name"], r["settings"], r["nodes"]) for r in data["records"]]
        graph.validate()
    except GraphError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # a field missing or of the wrong type: the file was not written by save_graph
        raise GraphError(f"{directory / GRAPH_FILE}: malformed ({type(exc).__name__}: {_first_line(exc)})") from None
    return graph


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
