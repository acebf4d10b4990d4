"""SPOS's evolution on the DAG space: every candidate is a valid DAG within the limit and new,
the top-k improves on a known objective, and a resumed search proposes what an uninterrupted one
does."""
from st_nas.evolution import Evolution
from st_nas.space import Skeleton, arch_from_json, arch_madds, is_valid_block

SK = Skeleton(input_size=32, num_classes=10, stem_width=16, stem_stride=1, first_width=8, widths=(16, 24, 32, 48, 64, 96),
              strides=(2, 2, 1, 2, 1, 1), nodes=(3, 3, 4, 3, 3, 2), last_width=256)
LIMIT = 10_000_000


def objective(archs):
    """A known score: more k7 edges is better (and cheap to compute)."""
    return [(float(sum(op.startswith("k7") for b in a for _, _, op in b)), [0.0]) for a in archs]


def _evo():
    return Evolution(SK, LIMIT, population=12, topk=4, mutations=6, crossovers=6, mutate_prob=0.2, seed=3)


def test_candidates_are_valid_new_and_within_the_limit():
    evo = _evo()
    for _ in range(4):
        evo.run_generation(objective)
    keys = set()
    for r in evo.records:
        arch = arch_from_json(r["arch"], SK)
        assert all(is_valid_block(n, b) for n, b in zip(SK.nodes, arch))
        assert r["madds"] == arch_madds(SK, arch) <= LIMIT
        keys.add(arch)
    assert len(keys) == len(evo.records) == 48
    first = max(r["proxy"] for r in evo.records if r["generation"] == 0)
    assert evo.top(1)[0]["proxy"] > first  # children of the top-k beat the random generation
    assert sum(r["generation"] > 0 for r in evo.records) == 36


def test_resumed_evolution_proposes_the_same_candidates():
    a = _evo()
    for _ in range(3):
        a.run_generation(objective)
    b = _evo()
    b.run_generation(objective)
    c = _evo()
    c.load_state_dict(b.state_dict())
    for _ in range(2):
        c.run_generation(objective)
    assert [r["arch"] for r in a.records] == [r["arch"] for r in c.records]
