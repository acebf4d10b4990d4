"""Pruning the learned graph and recording it.

After `--epochs` of training with the L1 term, an edge (i, j) is dropped when its normalised
strength |w_ij| / sum_i |w_ij| (over target j's in-edges, the output counting as a target) is
below `--prune-threshold`; every node keeps at least its strongest input, and nodes that no longer
reach the stage output are removed with their edges (so the network gets cheaper). Then
`--finetune-epochs`. BN after every aggregation makes a node blind to a common scale of its
in-weights, hence the normalisation: the raw |w| of two nodes are not comparable.

`graph_record` is graph.json: model, input_size, num_classes, stages [{nodes, edges [[i, j, w]...],
kept [[i, j]...]}] (j = nodes means the stage output), edges_total, edges_kept. `plot_graph`
draws one adjacency heatmap per stage (graph_stage<k>.png).
"""
from __future__ import annotations

from pathlib import Path

from topo_connectivity.model import TopoNet, TopoStage

__all__ = ["edges_to_keep", "prune_stage", "prune_model", "count_edges", "edge_sparsity", "graph_record",
           "plot_graph"]


def edges_to_keep(stage: TopoStage, threshold: float) -> list[tuple[int, int]]:
    """Edges whose normalised strength is >= threshold, plus each target's strongest in-edge."""
    s = stage.strength().cpu()
    edges = stage.edges()
    keep = {e for e, v in zip(edges, s.tolist()) if v >= threshold}
    best = {}
    for e, v in zip(edges, s.tolist()):
        if e[1] not in best or v > best[e[1]][1]:
            best[e[1]] = (e, v)
    keep |= {e for e, _ in best.values()}
    return sorted(keep, key=lambda e: (e[1], e[0]))


def prune_stage(stage: TopoStage, threshold: float) -> None:
    stage.keep_edges(edges_to_keep(stage, threshold))


def prune_model(model: TopoNet, threshold: float) -> dict:
    """Prune every stage in place; returns {'edges_total', 'edges_kept', 'nodes_removed'}."""
    removed = 0
    for stage in model.stages():
        before = len(stage.active)
        prune_stage(stage, threshold)
        removed += before - len(stage.active)
    total, kept = count_edges(model)
    return {"edges_total": total, "edges_kept": kept, "nodes_removed": removed}


def count_edges(model: TopoNet, threshold: float | None = None) -> tuple[int, int]:
    """(edges before pruning, edges present now); with `threshold`, the edges that pruning at
    that threshold would keep (the sparsity the L1 term has reached so far)."""
    total = kept = 0
    for stage in model.stages():
        total += stage.total_edges
        kept += len(stage.edge_index) if threshold is None else len(edges_to_keep(stage, threshold))
    return total, kept


def edge_sparsity(model: TopoNet, threshold: float | None = None) -> float:
    """1 - present / total (see count_edges)."""
    total, kept = count_edges(model, threshold)
    return 1.0 - kept / max(total, 1)


def graph_record(model: TopoNet, input_size: int) -> dict:
    """graph.json: every stage's original edges (pruned ones with their weight when pruned, kept
    ones with their current weight) and the kept pairs."""
    stages = []
    for stage in model.stages():
        present = {(i, j): float(w) for (i, j), w in zip(stage.edges(), stage.edge_values().detach().cpu().tolist())}
        original = stage.original or [[i, j, w] for (i, j), w in present.items()]
        edges = [[i, j, present.get((i, j), w)] for i, j, w in original]
        stages.append({"nodes": stage.n, "edges": edges, "kept": [[i, j] for i, j in present],
                       "active_nodes": list(stage.active)})
    total = sum(len(s["edges"]) for s in stages)
    kept = sum(len(s["kept"]) for s in stages)
    spec = model.spec
    return {"model": spec["model"], "wiring": spec.get("wiring"), "input_size": int(input_size),
            "num_classes": spec["num_classes"], "trainable": spec.get("trainable", True),
            "edge_param": spec.get("edge_param", "raw"),
            "seed": spec.get("seed", 0), "graph_params": spec.get("graph_params", {}),
            "model_args": spec.get("model_args", {}), "stages": stages, "edges_total": total, "edges_kept": kept}


def plot_graph(record: dict, out_dir) -> list[Path]:
    """graph_stage<k>.png: the adjacency (rows: source node, columns: target, last column the
    output) coloured by normalised strength; pruned edges hatched out (shown as grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    for k, st in enumerate(record["stages"], 1):
        n = st["nodes"]
        a = np.full((n, n + 1), np.nan)
        w = np.zeros((n, n + 1))
        for i, j, v in st["edges"]:
            w[i, j] = abs(v)
        col = w.sum(0, keepdims=True)
        strength = np.divide(w, col, out=np.zeros_like(w), where=col > 0)
        kept = {(i, j) for i, j in st["kept"]}
        pruned = np.full((n, n + 1), np.nan)
        for i, j, _ in st["edges"]:
            if (i, j) in kept:
                a[i, j] = strength[i, j]
            else:
                pruned[i, j] = 1.0
        fig, ax = plt.subplots(figsize=(max(3.0, 0.22 * n + 2), max(2.6, 0.2 * n + 1.6)))
        im = ax.imshow(a, cmap="viridis", vmin=0, vmax=np.nanmax(a) if np.isfinite(a).any() else 1)
        ax.imshow(pruned, cmap="Greys", vmin=0, vmax=2, alpha=0.6)
        ax.set_xlabel(f"target node (column {n} = stage output)")
        ax.set_ylabel("source node")
        ax.set_title(f"stage {k}: {len(st['kept'])}/{len(st['edges'])} edges kept", fontsize=9)
        fig.colorbar(im, ax=ax, label="|w_ij| / sum_i |w_ij|")
        fig.tight_layout()
        path = Path(out_dir) / f"graph_stage{k}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out.append(path)
    return out
