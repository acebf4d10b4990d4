"""The Topology Augmented Search Space (ST-NAS §3.1, abstract): a MobileNetV2 skeleton whose
stages are directed acyclic graphs with computation modules on the edges.

Skeleton (MobileNetV2-1.0): 3x3 stem, the fixed t=1 bottleneck, six searchable stages with
MobileNetV2's strides and widths, a 1x1 conv to 1280 channels, global pooling and a classifier.
Each stage is one block: a DAG over N nodes, node 0 its input and node N-1 its output. Every edge
i<j is absent or one MBConv op `k{3,5,7}e{3,6}` (kernel, expansion) and

    node_j = sum over in-edges i of op_ij(node_i).

Edges out of node 0 change the stride and the width (stride s, C_in -> C_out); the others keep
both. A block is valid iff every node but 0 has an in-edge and every node but N-1 an out-edge,
so every node lies on a path from input to output. The chain 0->1->...->N-1 is MobileNetV2's own
stage (N-1 inverted residuals), which is why N = depth + 1 per stage by default.

An architecture is a tuple of blocks; a block is a tuple of edges (i, j, op) sorted by (j, i).
Its JSON form is `{"stages": [{"nodes": N, "edges": [[i, j, op], ...]}, ...]}`.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import asdict, dataclass

import torch

__all__ = ["OPS", "parse_op", "Skeleton", "block_edges", "count_block", "count_space", "check_block",
           "arch_from_json", "arch_to_json", "is_valid_block", "sample_block", "sample_arch", "sample_within", "chain_arch",
           "arch_madds", "conv_out", "read_arch_file"]

OPS = ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")
_OP_RE = re.compile(r"k(\d+)e(\d+)")


@functools.cache
def parse_op(name: str) -> tuple[int, int]:
    """`k5e6` -> (kernel 5, expansion 6)."""
    m = _OP_RE.fullmatch(str(name))
    if not m or int(m.group(1)) % 2 == 0 or int(m.group(2)) < 1:
        raise ValueError(f"unknown op {name!r}: expected k<odd kernel>e<expansion>, e.g. k3e6")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class Skeleton:
    """The macro skeleton and the choices inside it (defaults: MobileNetV2-1.0 at 224 px)."""
    input_size: int = 224
    num_classes: int = 1000
    stem_width: int = 32
    stem_stride: int = 2
    first_width: int = 16
    widths: tuple = (24, 32, 64, 96, 160, 320)
    strides: tuple = (2, 2, 2, 1, 2, 1)
    nodes: tuple = (3, 4, 5, 4, 4, 2)
    ops: tuple = OPS
    last_width: int = 1280

    def __post_init__(self):
        for name in ("widths", "strides", "nodes", "ops"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not (len(self.widths) == len(self.strides) == len(self.nodes)) or not self.widths:
            raise ValueError(f"widths {self.widths}, strides {self.strides} and nodes {self.nodes} must have "
                             f"the same (non-zero) length: one entry per stage")
        if any(n < 2 for n in self.nodes):
            raise ValueError(f"nodes {self.nodes}: a block needs at least 2 nodes (input and output)")
        if any(s not in (1, 2) for s in self.strides) or self.stem_stride not in (1, 2):
            raise ValueError(f"strides {self.strides} / stem stride {self.stem_stride}: each must be 1 or 2")
        if len(set(self.ops)) != len(self.ops) or not self.ops:
            raise ValueError(f"ops {self.ops}: give each op once")
        for op in self.ops:
            parse_op(op)
        if min(self.widths + (self.stem_width, self.first_width, self.last_width, self.num_classes)) < 1:
            raise ValueError("every width and num_classes must be positive")

    @classmethod
    def from_args(cls, args, num_classes: int) -> Skeleton:
        return cls(input_size=args.input_size, num_classes=num_classes, stem_width=args.stem_width,
                   stem_stride=args.stem_stride, first_width=args.first_width, widths=args.widths,
                   strides=args.strides, nodes=args.nodes, ops=args.ops, last_width=args.last_width)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Skeleton:
        return cls(**d)

    def stage_channels(self, s: int) -> tuple[int, int]:
        """(input, output) channels of stage s."""
        return (self.first_width if s == 0 else self.widths[s - 1]), self.widths[s]


def block_edges(num_nodes: int) -> list[tuple[int, int]]:
    """The possible edges (i, j), i < j, in the canonical order: by target j, then source i."""
    return [(i, j) for j in range(1, num_nodes) for i in range(j)]


def count_block(num_nodes: int, num_ops: int) -> int:
    """Exact number of valid blocks over `num_nodes` nodes with `num_ops` ops per edge.

    Inclusion-exclusion over the violated constraints: for X (nodes 1..N-1 forced to have no
    in-edge) and Y (nodes 0..N-2 forced to have no out-edge), the edges that touch neither are
    free ((num_ops + 1) choices each, absent included); sum (-1)^(|X|+|Y|) (num_ops + 1)^free.
    (4, 1) -> 10, (4, 2) -> 264, (5, 3) -> 505,764.
    """
    n, k = int(num_nodes), int(num_ops)
    if n < 2 or k < 1:
        raise ValueError(f"count_block({num_nodes}, {num_ops}): need at least 2 nodes and 1 op")
    edges = block_edges(n)
    total = 0
    for x in range(1 << n):  # bit v set: node v has no in-edge
        if x & 1:
            continue  # node 0 carries no in-edge constraint
        for y in range(1 << n):  # bit v set: node v has no out-edge
            if y >> (n - 1) & 1:
                continue  # node N-1 carries no out-edge constraint
            free = sum(1 for i, j in edges if not (x >> j & 1) and not (y >> i & 1))
            sign = -1 if (bin(x).count("1") + bin(y).count("1")) % 2 else 1
            total += sign * (k + 1) ** free
    return total


def count_space(skeleton: Skeleton) -> dict:
    """{"topologies": DAG shapes ignoring the op on each edge, "architectures": with ops}
    (the paper reports "over 3.4x10^10 topologies" for its own space)."""
    topo = math.prod(count_block(n, 1) for n in skeleton.nodes)
    archs = math.prod(count_block(n, len(skeleton.ops)) for n in skeleton.nodes)
    return {"topologies": topo, "architectures": archs}


def is_valid_block(num_nodes: int, edges) -> bool:
    has_in = {j for _, j, _ in edges}
    has_out = {i for i, _, _ in edges}
    return all(v in has_in for v in range(1, num_nodes)) and all(v in has_out for v in range(num_nodes - 1))


def check_block(num_nodes: int, edges, ops=OPS, where: str = "") -> tuple:
    """A block's edges, validated and canonically sorted; ValueError naming the edge or node."""
    at = f"{where}: " if where else ""
    seen = set()
    out = []
    for e in edges:
        if not isinstance(e, (list, tuple)) or len(e) != 3:
            raise ValueError(f"{at}edge {e!r}: expected [i, j, op]")
        i, j, op = e
        if not isinstance(i, int) or not isinstance(j, int) or isinstance(i, bool) or isinstance(j, bool):
            raise ValueError(f"{at}edge {list(e)!r}: node indices must be integers")
        if not 0 <= i < j < num_nodes:
            raise ValueError(f"{at}edge {list(e)!r}: needs 0 <= i < j < {num_nodes} (nodes of this block)")
        if op not in ops:
            raise ValueError(f"{at}edge {list(e)!r}: op {op!r} is not one of {list(ops)}")
        if (i, j) in seen:
            raise ValueError(f"{at}edge {list(e)!r}: a second op on edge ({i}, {j})")
        seen.add((i, j))
        out.append((i, j, op))
    has_in = {j for _, j, _ in out}
    has_out = {i for i, _, _ in out}
    for v in range(1, num_nodes):
        if v not in has_in:
            raise ValueError(f"{at}node {v} has no in-edge (edges {[list(x) for x in out]})")
    for v in range(num_nodes - 1):
        if v not in has_out:
            raise ValueError(f"{at}node {v} has no out-edge (edges {[list(x) for x in out]})")
    return tuple(sorted(out, key=lambda t: (t[1], t[0])))


def arch_from_json(stages, skeleton: Skeleton, where: str = "arch") -> tuple:
    """`[{"nodes": N, "edges": [[i, j, op], ...]}, ...]` -> a validated architecture tuple."""
    if not isinstance(stages, list) or len(stages) != len(skeleton.nodes):
        raise ValueError(f"{where}: 'stages' must be a list of {len(skeleton.nodes)} blocks, got "
                         f"{type(stages).__name__} of length {len(stages) if isinstance(stages, list) else '-'}")
    arch = []
    for s, st in enumerate(stages):
        if not isinstance(st, dict) or "edges" not in st:
            raise ValueError(f"{where}: stage {s} must be an object with 'nodes' and 'edges'")
        n = st.get("nodes", skeleton.nodes[s])
        if n != skeleton.nodes[s]:
            raise ValueError(f"{where}: stage {s} has {n} nodes, the skeleton {skeleton.nodes[s]}")
        arch.append(check_block(n, st["edges"], skeleton.ops, f"{where}, stage {s}"))
    return tuple(arch)


def arch_to_json(arch, skeleton: Skeleton) -> list[dict]:
    return [{"nodes": n, "edges": [[i, j, op] for i, j, op in block]} for n, block in zip(skeleton.nodes, arch)]


def sample_block(num_nodes: int, ops, generator: torch.Generator, density: float | None = None) -> tuple:
    """A random valid block. `density=None`: every edge uniform over {absent} + ops, rejecting
    invalid blocks, which is exactly uniform over the valid blocks (about 70 % are accepted for 6
    ops). `density=rho`: a sparser proposal, valid by construction: each node j > 0 takes one
    in-edge from a random earlier node, each node left without an out-edge one to a random later
    node, every other edge is present with probability rho; ops uniform."""
    pairs = block_edges(num_nodes)
    if density is None:
        while True:
            choice = torch.randint(0, len(ops) + 1, (len(pairs),), generator=generator).tolist()
            edges = tuple((i, j, ops[c - 1]) for (i, j), c in zip(pairs, choice) if c > 0)
            if is_valid_block(num_nodes, edges):
                return edges

    def pick(lo, hi):
        return int(torch.randint(lo, hi, (), generator=generator))

    present = {(pick(0, j), j) for j in range(1, num_nodes)}
    for i in range(num_nodes - 1):
        if not any(a == i for a, _ in present):
            present.add((i, pick(i + 1, num_nodes)))
    extra = torch.rand(len(pairs), generator=generator).tolist()
    op = torch.randint(0, len(ops), (len(pairs),), generator=generator).tolist()
    return tuple((i, j, ops[o]) for (i, j), r, o in zip(pairs, extra, op) if (i, j) in present or r < density)


def sample_arch(skeleton: Skeleton, generator: torch.Generator, density: float | None = None) -> tuple:
    """A random architecture: uniform over the space by default (SPOS's uniform single path)."""
    return tuple(sample_block(n, skeleton.ops, generator, density) for n in skeleton.nodes)


def sample_within(skeleton: Skeleton, generator: torch.Generator, lo: float, hi: float, tries: int = 2000):
    """A random architecture with lo <= MAdds <= hi, or None after `tries` draws.

    Uniform over the space by rejection while uniform draws land in the range; once 20 uniform
    draws in a row missed (a tight limit far below the space's typical cost, such as 326M for a
    space whose uniform draws average several times that), each draw first takes an edge density
    rho ~ U(0, 1), so sparse topologies are proposed too (then the draw is no longer uniform)."""
    misses = 0
    for _ in range(tries):
        density = None if misses < 20 else float(torch.rand((), generator=generator))
        arch = sample_arch(skeleton, generator, density)
        if lo <= arch_madds(skeleton, arch) <= hi:
            return arch
        misses += 1
    return None


def chain_arch(skeleton: Skeleton, op: str | None = None) -> tuple:
    """Every block a chain of one op (the cheapest op by default): MobileNetV2's topology."""
    op = op or min(skeleton.ops, key=lambda o: parse_op(o)[0] * 100 + parse_op(o)[1])
    return tuple(tuple((v, v + 1, op) for v in range(n - 1)) for n in skeleton.nodes)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv with padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _mbconv_madds(cin: int, cout: int, kernel: int, expansion: int, stride: int, size: int) -> int:
    hidden = cin * expansion
    out = conv_out(size, kernel, stride)
    expand = size * size * cin * hidden if expansion != 1 else 0
    return expand + out * out * hidden * kernel * kernel + out * out * hidden * cout


def arch_madds(skeleton: Skeleton, arch) -> int:
    """Multiply-adds of conv and linear layers for one image, analytically (the protocol of
    `shared.metrics.flops.count_madds`: BN, activations, pooling and additions count zero)."""
    sk = skeleton
    size = conv_out(sk.input_size, 3, sk.stem_stride)
    total = size * size * 3 * sk.stem_width * 9
    total += _mbconv_madds(sk.stem_width, sk.first_width, 3, 1, 1, size)  # the fixed t=1 bottleneck
    for s, block in enumerate(arch):
        cin, cout = sk.stage_channels(s)
        stride = sk.strides[s]
        out = conv_out(size, 3, stride)
        for i, _, op in block:
            k, e = parse_op(op)
            total += (_mbconv_madds(cin, cout, k, e, stride, size) if i == 0
                      else _mbconv_madds(cout, cout, k, e, 1, out))
        size = out
    total += size * size * sk.widths[-1] * sk.last_width + sk.last_width * sk.num_classes
    return total


def read_arch_file(path: str | os.PathLike) -> tuple[Skeleton, tuple, dict]:
    """(skeleton, architecture, the whole record) of an `arch.json` written by search.py; a
    malformed file raises ValueError naming the file (and the edge or node at fault)."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such architecture file") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object with 'stages' and 'skeleton'")
    for key in ("stages", "skeleton"):
        if key not in record:
            raise ValueError(f"{path}: no {key!r} entry")
    try:
        skeleton = Skeleton.from_dict(record["skeleton"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: bad 'skeleton': {e}") from None
    return skeleton, arch_from_json(record["stages"], skeleton, where=str(path)), record
