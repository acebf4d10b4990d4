"""Wirings: acyclic in index order, every node on a path from node 0 to the output, seeded."""
import pytest

from topo_connectivity.graphs import KINDS, Graph, check_graph, make_graph


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_graphs_are_acyclic_connected_dags(kind, n):
    g = make_graph(kind, n, seed=3)
    assert g.n == n
    assert all(0 <= i < j < n for i, j in g.edges)  # i < j: acyclic by construction
    assert len(set(g.edges)) == len(g.edges)
    has_in = {j for _, j in g.edges}
    assert all(j in has_in for j in range(1, n))  # every node reads something
    reach = set(g.outputs)  # every node reaches the output
    for i, j in sorted(g.edges, reverse=True):
        if j in reach:
            reach.add(i)
    assert reach == set(range(n))


def test_fixed_wirings_edge_counts():
    n = 6
    assert len(make_graph("complete", n).edges) == n * (n - 1) // 2
    assert make_graph("residual", n) == make_graph("learned", n) == make_graph("complete", n)
    assert make_graph("residual", n).outputs == tuple(range(n))
    chain = make_graph("chain", n)
    assert chain.edges == tuple((j - 1, j) for j in range(1, n)) and chain.outputs == (n - 1,)


@pytest.mark.parametrize("kind", ["er", "ba", "ws"])
def test_random_graphs_are_seed_deterministic(kind):
    a, b = make_graph(kind, 32, seed=7), make_graph(kind, 32, seed=7)
    assert a == b
    others = {make_graph(kind, 32, seed=s).edges for s in range(8, 12)}
    assert len(others | {a.edges}) > 1  # the seed matters


def test_ws_default_is_randwire_k4_p075():
    g = make_graph("ws", 33, seed=0)
    inner = [e for e in g.edges if e[0] > 0]
    assert len(inner) == 32 * 4 // 2  # WS keeps N*K/2 edges
    assert make_graph("ws", 33, seed=0, k=4, p=0.75) == g


def test_bad_wirings_raise():
    with pytest.raises(ValueError, match="unknown wiring"):
        make_graph("star", 4)
    with pytest.raises(ValueError, match="unknown parameters"):
        make_graph("ws", 8, q=1)
    with pytest.raises(ValueError, match="no input"):
        check_graph(Graph(3, ((0, 1),), (1, 2)))
    with pytest.raises(ValueError, match="do not reach"):
        check_graph(Graph(3, ((0, 1), (0, 2)), (1,)))
