"""The search space: exact counts against brute force, validation of blocks and arch.json files,
random architectures, and the analytic MAdds against shared.metrics.flops on real networks."""
import itertools
import json

import pytest
import torch

from shared.metrics.flops import count_madds
from st_nas.evolution import Evolution, from_genes, to_genes
from st_nas.model import ChildNet
from st_nas.space import (
    OPS,
    Skeleton,
    arch_madds,
    arch_to_json,
    block_edges,
    chain_arch,
    check_block,
    count_block,
    count_space,
    is_valid_block,
    read_arch_file,
    sample_arch,
    sample_within,
)

TOY = Skeleton(input_size=32, num_classes=10, stem_width=16, stem_stride=2, first_width=8, widths=(16, 24, 32, 48, 64, 96),
               strides=(2, 2, 1, 2, 1, 1), nodes=(3, 3, 4, 3, 3, 2), last_width=256)


def brute_force(n, k):
    """Every assignment of {absent, op_1..op_k} to every edge, counted when valid."""
    pairs = block_edges(n)
    total = 0
    for choice in itertools.product(range(k + 1), repeat=len(pairs)):
        edges = [(i, j, c) for (i, j), c in zip(pairs, choice) if c]
        total += is_valid_block(n, edges)
    return total


@pytest.mark.parametrize("n,k", [(2, 1), (2, 6), (3, 1), (3, 6), (4, 1), (4, 2), (4, 3), (5, 1), (5, 2)])
def test_count_block_matches_brute_force(n, k):
    assert count_block(n, k) == brute_force(n, k)


def test_count_block_known_values_and_space():
    assert count_block(4, 1) == 10 and count_block(4, 2) == 264 and count_block(5, 3) == 505_764
    # six nodes, by subsets of edges weighted by k^|E| (a second independent enumeration)
    pairs = block_edges(6)
    total = 0
    for mask in range(1 << len(pairs)):
        es = [(i, j, 0) for t, (i, j) in enumerate(pairs) if mask >> t & 1]
        total += is_valid_block(6, es) * 2 ** len(es)
    assert count_block(6, 2) == total
    size = count_space(Skeleton())
    assert size["topologies"] == 2 * 10 * 122 * 10 * 10 * 1
    assert size["architectures"] == 252 * 83160 * 198141552 * 83160 ** 2 * 6


def test_uniform_sampling_is_uniform_over_valid_blocks():
    g = torch.Generator().manual_seed(0)
    counts = {}
    one_stage = Skeleton(widths=(8,), strides=(1,), nodes=(3,), ops=("k3e3", "k5e3"))
    for _ in range(6000):
        b = sample_arch(one_stage, g)[0]
        counts[b] = counts.get(b, 0) + 1
    assert len(counts) == count_block(3, 2) == 12
    assert max(counts.values()) / min(counts.values()) < 1.35  # 500 expected each


def test_check_block_names_the_edge_or_node():
    good = check_block(4, [[1, 3, "k3e3"], [0, 1, "k5e6"], [0, 2, "k3e3"], [2, 3, "k7e3"]])
    assert good == ((0, 1, "k5e6"), (0, 2, "k3e3"), (1, 3, "k3e3"), (2, 3, "k7e3"))
    for edges, msg in [([[0, 1, "k9e6"], [1, 2, "k3e3"]], r"edge \[0, 1, 'k9e6'\].*not one of"),
                       ([[1, 0, "k3e3"]], r"edge \[1, 0, 'k3e3'\].*0 <= i < j"),
                       ([[0, 1, "k3e3"], [0, 1, "k5e3"], [1, 2, "k3e3"]], r"second op on edge \(0, 1\)"),
                       ([[0, 2, "k3e3"]], "node 1 has no in-edge"),
                       ([[0, 1, "k3e3"], [0, 2, "k3e3"]], "node 1 has no out-edge"),
                       ([[0, 1]], "expected")]:
        with pytest.raises(ValueError, match=msg):
            check_block(3, edges, where="f.json")


def test_malformed_arch_file_names_file_and_edge(tmp_path):
    arch = chain_arch(TOY)
    good = {"stages": arch_to_json(arch, TOY), "skeleton": TOY.to_dict()}
    p = tmp_path / "arch.json"
    p.write_text(json.dumps(good))
    assert read_arch_file(p)[1] == arch
    bad = json.loads(json.dumps(good))
    bad["stages"][2]["edges"][1] = [1, 3, "k4e6"]
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=rf"{p}, stage 2: edge \[1, 3, 'k4e6'\]"):
        read_arch_file(p)
    p.write_text("{broken")
    with pytest.raises(ValueError, match=f"{p}: not valid JSON"):
        read_arch_file(p)
    p.write_text(json.dumps({"stages": []}))
    with pytest.raises(ValueError, match="no 'skeleton'"):
        read_arch_file(p)


def test_analytic_madds_equal_counted_madds_on_20_random_architectures():
    g = torch.Generator().manual_seed(1)
    for t in range(20):
        sk = TOY if t % 2 else Skeleton(input_size=17 + t, num_classes=7, stem_width=8, first_width=8,
                                        widths=(8, 16, 16, 24, 24, 32), last_width=32)
        arch = sample_arch(sk, g, density=None if t < 10 else 0.3)
        net = ChildNet(sk, arch)
        assert arch_madds(sk, arch) == count_madds(net, (1, 3, sk.input_size, sk.input_size)), (t, arch)


def test_chain_k3e6_is_mobilenet_v2_madds():
    """The all-k3e6 chain of the default skeleton is MobileNetV2-1.0 (torchvision's count)."""
    assert arch_madds(Skeleton(), chain_arch(Skeleton(), "k3e6")) == 300_774_272


def test_sample_within_and_genes_round_trip():
    g = torch.Generator().manual_seed(2)
    sk = Skeleton()
    for _ in range(10):
        a = sample_within(sk, g, 0, 326e6)
        assert a is not None and arch_madds(sk, a) <= 326e6
        assert all(is_valid_block(n, b) for n, b in zip(sk.nodes, a))
        assert from_genes(to_genes(a, sk), sk) == a
    assert sample_within(sk, g, 0, 100e6, tries=50) is None
    with pytest.raises(ValueError, match="below the cheapest architecture"):
        Evolution(sk, 100_000_000)


def test_skeleton_rejects_bad_settings():
    with pytest.raises(ValueError, match="same"):
        Skeleton(widths=(8, 16), strides=(1,), nodes=(3, 3))
    with pytest.raises(ValueError, match="unknown op"):
        Skeleton(ops=("k4e6",))
    assert Skeleton.from_dict(TOY.to_dict()) == TOY and len(OPS) == 6
