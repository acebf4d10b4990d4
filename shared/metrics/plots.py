"""Plots of evaluation results, drawn with matplotlib's Agg canvas (no display, no global state).

* :func:`plot_ar_an` -- the AR-AN curve of one ``shared.metrics.activitynet.evaluate_proposals``
  result: recall at a few tIoU thresholds and the average recall, AUC in the legend.
* :func:`plot_ar_an_compare` -- the average-recall curves of several results on one axis (a
  method against its baselines, proposal sources against their ensemble).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

__all__ = ["plot_ar_an", "plot_ar_an_compare"]


def _axes(title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlabel("Average number of proposals per video")
    ax.set_ylabel("Recall")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    return fig, ax


def _save(fig, ax, path) -> None:
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")


def plot_ar_an(result: Mapping, path: str | os.PathLike, title: str | None = None,
               n_threshold_curves: int = 5) -> None:
    """Write the AR-AN curve of an ``evaluate_proposals`` result to ``path`` (PNG).

    Draws the recall curve of up to ``n_threshold_curves`` evenly spread tIoU thresholds and the
    average recall (bold), with the AUC in the legend.
    """
    import matplotlib

    ppv = np.asarray(result["proposals_per_video"])
    recall = np.asarray(result["recall"])
    thr = np.asarray(result.get("tiou_thresholds", np.arange(recall.shape[0])))
    fig, ax = _axes(title or "AR-AN")
    n = recall.shape[0]
    picks = sorted(set(np.linspace(0, n - 1, min(n_threshold_curves, n)).round().astype(int)))
    cmap = matplotlib.colormaps["viridis"]
    for i, ti in enumerate(picks):
        ax.plot(ppv, recall[ti], color=cmap(i / max(len(picks) - 1, 1)), linewidth=1.2,
                label=f"tIoU {thr[ti]:.2f}")
    ax.plot(ppv, np.asarray(result["avg_recall"]), color="tab:red", linewidth=2.5,
            label=f"average (AUC {float(result['AUC']):.2f})")
    ax.set_xlim(0, float(ppv[-1]) if ppv.size else 1)
    _save(fig, ax, path)


def plot_ar_an_compare(results: Mapping[str, Mapping], path: str | os.PathLike, title: str | None = None) -> None:
    """Write the average-recall curves of several ``evaluate_proposals`` results (name -> result)
    to ``path`` (PNG), each labelled with its AUC."""
    fig, ax = _axes(title or "AR-AN")
    right = 1.0
    for name, res in results.items():
        ppv = np.asarray(res["proposals_per_video"])
        ax.plot(ppv, np.asarray(res["avg_recall"]), linewidth=1.8, label=f"{name} (AUC {float(res['AUC']):.2f})")
        right = max(right, float(ppv[-1]) if ppv.size else 1.0)
    ax.set_xlim(0, right)
    _save(fig, ax, path)
