"""Evolutionary architecture search under a MAdds limit, as SPOS does it (Guo et al. 2020, §3.4
and the official `search.py`): a random first population, then per generation children of the
top-k architectures evaluated so far, by mutation (each gene redrawn with probability
`mutate_prob`) and by crossover (each gene from either parent), topped up with random ones.

Genes: one per possible edge of every block, 0 for absent and 1..K for the op. A candidate is
legal when every block is a valid DAG, its analytic MAdds are within the limit and it was never
evaluated before; illegal candidates are dropped before evaluation (over-limit ones are never
evaluated), and SPOS's bound of 10 tries per wanted child applies. All draws of generation g come
from the generator of (seed, g), so a resumed search proposes what an uninterrupted one does.
"""
from __future__ import annotations

import torch

from st_nas.sgld import EVOLUTION, step_generator
from st_nas.space import Skeleton, arch_madds, arch_to_json, block_edges, chain_arch, is_valid_block, sample_within

__all__ = ["to_genes", "from_genes", "Evolution"]


def to_genes(arch, skeleton: Skeleton) -> list[list[int]]:
    index = {op: k + 1 for k, op in enumerate(skeleton.ops)}
    genes = []
    for n, block in zip(skeleton.nodes, arch):
        chosen = {(i, j): index[op] for i, j, op in block}
        genes.append([chosen.get(e, 0) for e in block_edges(n)])
    return genes


def from_genes(genes, skeleton: Skeleton) -> tuple:
    return tuple(tuple((i, j, skeleton.ops[c - 1]) for (i, j), c in zip(block_edges(n), gs) if c > 0)
                 for n, gs in zip(skeleton.nodes, genes))


def _arch_key(arch_json) -> tuple:
    return tuple(tuple(tuple(e) for e in st["edges"]) for st in arch_json)


class Evolution:
    """SPOS's evolution; `run_generation(evaluate)` proposes, evaluates and records one generation.
    `evaluate(archs)` returns one (proxy, per-sample accuracies) pair per architecture."""

    def __init__(self, skeleton: Skeleton, madds_limit: int, *, population: int = 50, topk: int = 10,
                 mutations: int = 25, crossovers: int = 25, mutate_prob: float = 0.1, seed: int = 0):
        self.skeleton, self.limit = skeleton, int(madds_limit)
        self.population, self.k = population, topk
        self.mutations, self.crossovers, self.mutate_prob = mutations, crossovers, mutate_prob
        self.seed = seed
        self.records: list[dict] = []  # every evaluated candidate, in evaluation order
        self.seen: set = set()
        self.generation = 0
        floor = arch_madds(skeleton, chain_arch(skeleton))
        if floor > self.limit:
            raise ValueError(f"--madds-limit {self.limit / 1e6:g}M: below the cheapest architecture of the space "
                             f"({floor / 1e6:.2f}M MAdds, every block a k3e3 chain)")

    # ---------------------------------------------------------------- state (checkpoints)
    def state_dict(self) -> dict:
        return {"generation": self.generation, "records": self.records}

    def load_state_dict(self, state: dict) -> None:
        self.generation = int(state["generation"])
        self.records = list(state["records"])
        self.seen = {_arch_key(r["arch"]) for r in self.records}

    def top(self, k: int | None = None) -> list[dict]:
        """The best k records by proxy (earlier first among equals)."""
        order = sorted(range(len(self.records)), key=lambda i: (-self.records[i]["proxy"], i))
        return [self.records[i] for i in order[: (k or len(order))]]

    # ---------------------------------------------------------------- proposals
    def _legal(self, arch, taken: set) -> bool:
        if arch in self.seen or arch in taken:
            return False
        if not all(is_valid_block(n, b) for n, b in zip(self.skeleton.nodes, arch)):
            return False
        return arch_madds(self.skeleton, arch) <= self.limit

    def _mutate(self, parent, g: torch.Generator):
        genes = to_genes(parent, self.skeleton)
        choices = len(self.skeleton.ops) + 1
        for gs in genes:
            for t in range(len(gs)):
                if float(torch.rand((), generator=g)) < self.mutate_prob:
                    gs[t] = int(torch.randint(0, choices, (), generator=g))
        return from_genes(genes, self.skeleton)

    def _crossover(self, a, b, g: torch.Generator):
        ga, gb = to_genes(a, self.skeleton), to_genes(b, self.skeleton)
        genes = [[x if float(torch.rand((), generator=g)) < 0.5 else y for x, y in zip(sa, sb)]
                 for sa, sb in zip(ga, gb)]
        return from_genes(genes, self.skeleton)

    def propose(self) -> list:
        """The candidates of the current generation (each legal, none seen before)."""
        g = step_generator(self.seed, self.generation, EVOLUTION)
        taken: dict = {}
        if self.generation > 0:
            parents = [_arch_key(r["arch"]) for r in self.top(self.k)]
            for want, make in ((self.mutations, lambda: self._mutate(parents[_pick(g, parents)], g)),
                               (self.crossovers, lambda: self._crossover(parents[_pick(g, parents)],
                                                                          parents[_pick(g, parents)], g))):
                got = 0
                for _ in range(want * 10):
                    if got == want:
                        break
                    child = make()
                    if self._legal(child, taken):
                        taken[child] = None
                        got += 1
        misses = 0
        while len(taken) < self.population and misses < 10 * self.population:
            arch = sample_within(self.skeleton, g, 0, self.limit)
            if arch is not None and self._legal(arch, taken):
                taken[arch] = None
            else:
                misses += 1
        if not taken and self.generation == 0:
            raise RuntimeError(f"no random architecture found under {self.limit / 1e6:g}M MAdds")
        return list(taken)

    def run_generation(self, evaluate) -> list[dict]:
        """Propose, evaluate and record one generation; returns its records."""
        archs = self.propose()
        scores = evaluate(archs)
        new = []
        for arch, (proxy, accs) in zip(archs, scores):
            rec = {"generation": self.generation, "arch": arch_to_json(arch, self.skeleton),
                   "madds": arch_madds(self.skeleton, arch), "proxy": float(proxy),
                   "snapshot_top1": [float(a) for a in accs]}
            self.records.append(rec)
            self.seen.add(arch)
            new.append(rec)
        self.generation += 1
        return new


def _pick(g: torch.Generator, seq) -> int:
    return int(torch.randint(0, len(seq), (), generator=g))
