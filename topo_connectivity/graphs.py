"""Stage wirings: which edges a stage's DAG has before training.

A stage is a DAG over n ordered nodes 0..n-1 (node 0 is the transition, whose output y_0 feeds
the rest) and one aggregation into the stage output. `make_graph(kind, n, seed, **p)` returns a
`Graph`: `edges`, the pairs (i, j) with i < j among nodes 0..n-1 (the topological order is the
index order, so every wiring is acyclic), and `outputs`, the nodes summed into the stage output.

Kinds (`--wiring`):
- `complete` / `learned`: every i < j, every node into the output (the paper's search space: the
  complete graph whose edge weights are learned; `learned` adds L1 and pruning, see loss.py).
- `residual`: the same complete graph with every weight frozen at 1: unrolling a ResNet stage's
  shortcuts gives exactly this (x_j = y_0 + ... + y_{j-1}, output = y_0 + ... + y_{n-1}).
- `chain`: j-1 -> j only and the last node into the output (a plain stack, no shortcuts).
- `er` / `ba` / `ws`: RandWire's generators (Xie et al. 2019) over nodes 1..n-1 with networkx
  (Erdos-Renyi P, Barabasi-Albert M, Watts-Strogatz K, P), edges oriented from the lower to the
  higher index; as RandWire's extra input and output nodes, every node without a predecessor reads
  y_0 and every node without a successor feeds the output. Seeded: same (kind, n, seed, p), same graph.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["KINDS", "RANDOM_DEFAULTS", "Graph", "make_graph", "check_graph"]

KINDS = ("learned", "complete", "residual", "chain", "er", "ba", "ws")
# RandWire's defaults (Xie et al. 2019, Sec. 4): ER(P=0.2), BA(M=5), WS(K=4, P=0.75).
RANDOM_DEFAULTS = {"er": {"p": 0.2}, "ba": {"m": 5}, "ws": {"k": 4, "p": 0.75}}


class Graph(NamedTuple):
    """n nodes; edges (i, j), i < j < n, sorted by (j, i); outputs: nodes summed into the output."""
    n: int
    edges: tuple
    outputs: tuple


def _random_edges(kind: str, m: int, seed: int, p: dict) -> list[tuple[int, int]]:
    """Undirected random graph over m nodes (networkx), as (u, v) with u < v."""
    import networkx as nx

    q = {**RANDOM_DEFAULTS[kind], **p}
    unknown = set(q) - set(RANDOM_DEFAULTS[kind])
    if unknown:
        raise ValueError(f"{kind}: unknown parameters {sorted(unknown)} (expected {sorted(RANDOM_DEFAULTS[kind])})")
    if kind == "er":
        g = nx.gnp_random_graph(m, float(q["p"]), seed=seed)
    elif kind == "ba":
        mm = int(q["m"])
        if m <= mm:  # BA needs more nodes than attachments: fall back to the complete graph
            g = nx.complete_graph(m)
        else:
            g = nx.barabasi_albert_graph(m, mm, seed=seed)
    else:
        k = int(q["k"])
        if m <= k:
            g = nx.complete_graph(m)
        else:
            g = nx.watts_strogatz_graph(m, k, float(q["p"]), seed=seed)
    return sorted((min(u, v), max(u, v)) for u, v in g.edges() if u != v)


def make_graph(kind: str, n: int, seed: int = 0, **p) -> Graph:
    """The wiring of one stage of n nodes (node 0 = the transition). See the module docstring."""
    n = int(n)
    if n < 1:
        raise ValueError(f"a stage needs at least one node, got n={n}")
    if kind in ("learned", "complete", "residual"):
        edges = [(i, j) for j in range(1, n) for i in range(j)]
        outputs = list(range(n))
    elif kind == "chain":
        edges = [(j - 1, j) for j in range(1, n)]
        outputs = [n - 1]
    elif kind in RANDOM_DEFAULTS:
        inner = [(u + 1, v + 1) for u, v in _random_edges(kind, n - 1, seed, p)] if n > 1 else []
        has_in = {j for _, j in inner}
        has_out = {i for i, _ in inner}
        edges = inner + [(0, j) for j in range(1, n) if j not in has_in]
        outputs = [i for i in range(1, n) if i not in has_out] or [0]
    else:
        raise ValueError(f"unknown wiring {kind!r}; choose from {', '.join(KINDS)}")
    g = Graph(n, tuple(sorted(set(edges), key=lambda e: (e[1], e[0]))), tuple(sorted(set(outputs))))
    check_graph(g)
    return g


def check_graph(g: Graph) -> None:
    """Raise ValueError unless g is a DAG in index order in which every node lies on a path from
    node 0 to the output (every node j > 0 has a predecessor, every node reaches the output)."""
    n = g.n
    for i, j in g.edges:
        if not (0 <= i < j < n):
            raise ValueError(f"edge ({i}, {j}) is not i < j among nodes 0..{n - 1}")
    if not g.outputs or any(not (0 <= i < n) for i in g.outputs):
        raise ValueError(f"outputs {g.outputs} must be a non-empty subset of 0..{n - 1}")
    has_in = {j for _, j in g.edges}
    missing = [j for j in range(1, n) if j not in has_in]
    if missing:
        raise ValueError(f"nodes {missing} have no input")
    reaches = set(g.outputs)
    for i, j in sorted(g.edges, reverse=True):
        if j in reaches:
            reaches.add(i)
    dead = [i for i in range(n) if i not in reaches]
    if dead:
        raise ValueError(f"nodes {dead} do not reach the stage output")
