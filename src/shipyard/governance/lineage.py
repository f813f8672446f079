"""Lineage: which runs read and produced which dataset and model versions, as a graph.

Nodes are named ``dataset:NAME@VERSION``, ``run:RUN_ID`` and
``model:NAME/VERSION``; an edge ``(source, target, relation)`` reads
"source --relation--> target": a dataset is an ``input`` of a run, a run
``produced`` a dataset or a model version.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from typing import Literal

from shipyard.errors import InvalidInput
from shipyard.store import Store
from shipyard.store import datasets as datasets_repo
from shipyard.store import models as models_repo
from shipyard.store import runs as runs_repo

_REF = re.compile(r"(?P<kind>dataset|run|model):(?P<rest>.+)")
MAX_NODES = 10_000


@dataclasses.dataclass(frozen=True)
class Edge:
    source: str
    target: str
    relation: Literal["input", "produced"]


@dataclasses.dataclass(frozen=True)
class Lineage:
    root: str
    #: node id -> a short label ("credit@3, 1,000 rows", "run train-lr (FINISHED)")
    nodes: dict[str, str]
    edges: list[Edge]

    def upstream(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.target == node]

    def downstream(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.source == node]

    def to_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "nodes": self.nodes,
            "edges": [dataclasses.asdict(e) for e in self.edges],
        }


def parse_node(ref: str) -> str:
    match = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInput(
            f"Bad lineage reference {ref!r}.",
            hint="Write dataset:NAME@VERSION, model:NAME/VERSION or run:RUN_ID, e.g. dataset:credit@3.",
        )
    if match.group("kind") == "dataset" and not re.fullmatch(r"[^@]+@\d+", match.group("rest")):
        raise InvalidInput(
            f"Bad dataset reference {ref!r}: it needs a version, e.g. dataset:credit@3."
        )
    if match.group("kind") == "model" and not re.fullmatch(r"[^/@]+/\d+", match.group("rest")):
        raise InvalidInput(f"Bad model reference {ref!r}: it needs a version, e.g. model:credit/3.")
    return f"{match.group('kind')}:{match.group('rest')}"


def lineage(store: Store, ref: str, *, stale_before: int, depth: int = 25) -> Lineage:
    """The graph reachable from ``ref`` upstream and downstream, ``depth`` hops each way."""
    root = parse_node(ref)
    edges: set[Edge] = set()
    with store.read() as conn:

        def describe(node: str) -> str:
            kind, _, rest = node.partition(":")
            if kind == "dataset":
                name, _, version = rest.rpartition("@")
                found = datasets_repo.get_version(conn, name, int(version))
                return f"{found.name}@{found.version} ({found.rows:,} rows, {found.status})"
            if kind == "model":
                name, _, version = rest.rpartition("/")
                model = models_repo.get_version(conn, name, int(version))
                aliases = f", @{', @'.join(model.aliases)}" if model.aliases else ""
                return f"{model.name}/{model.version} ({model.flavor}, {model.status}{aliases})"
            (run,) = runs_repo.load(conn, [runs_repo.pk_of(conn, rest)], stale_before=stale_before)
            return f"run {run.name} ({run.status.value})"

        def neighbours(node: str) -> list[Edge]:
            kind, _, rest = node.partition(":")
            if kind == "dataset":
                name, _, version = rest.rpartition("@")
                found = datasets_repo.get_version(conn, name, int(version))
                out = [
                    Edge(node, f"run:{r}", "input")
                    for r in datasets_repo.readers(conn, name, found.version)
                ]
                out += [
                    Edge(node, f"model:{n}/{v}", "input")
                    for n, v in models_repo.versions_trained_on(conn, name, found.version)
                ]
                if found.run_id:
                    out.append(Edge(f"run:{found.run_id}", node, "produced"))
                return out
            if kind == "model":
                name, _, version = rest.rpartition("/")
                model = models_repo.get_version(conn, name, int(version))
                out = [Edge(f"dataset:{n}@{v}", node, "input") for n, v in model.datasets]
                if model.run_id:
                    out.append(Edge(f"run:{model.run_id}", node, "produced"))
                return out
            pk = runs_repo.pk_of(conn, rest)
            out = [
                Edge(f"dataset:{n}@{v}", node, "input")
                for n, v in datasets_repo.inputs_of(conn, pk)
            ]
            out += [
                Edge(node, f"dataset:{n}@{v}", "produced")
                for n, v in datasets_repo.outputs_of(conn, rest)
            ]
            out += [
                Edge(node, f"model:{n}/{v}", "produced")
                for n, v in models_repo.versions_of_run(conn, rest)
            ]
            return out

        for upward in (True, False):
            queue: deque[tuple[str, int]] = deque([(root, 0)])
            seen = {root}
            while queue and len(seen) < MAX_NODES:
                node, hops = queue.popleft()
                for edge in neighbours(node):
                    if (edge.target == node) != upward:
                        continue
                    edges.add(edge)
                    other = edge.source if upward else edge.target
                    if other not in seen and hops + 1 <= depth:
                        seen.add(other)
                        queue.append((other, hops + 1))
        ends = {root} | {e.source for e in edges} | {e.target for e in edges}
        nodes = {node: describe(node) for node in sorted(ends)}
    ordered = sorted(edges, key=lambda e: (e.source, e.target, e.relation))
    return Lineage(root, nodes, ordered)
