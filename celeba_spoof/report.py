"""Scores -> the paper's metrics with both threshold choices, plots, and the printed table.

Metrics come from ``shared.metrics.spoof`` (the official client's TPR@FPR and CDCN's APCER /
BPCER / ACER / EER / HTER / AUC, tested against both official codes). Which split set the
threshold of the paper's table is not documented, so we report both:

* ``val``:  CDCN's EER operating point chosen on the validation scores, applied to the test
  scores as it is (CDCN's "test based on val_threshold");
* ``test``: the EER operating point of the test scores themselves (optimistic).

TPR@FPR, AUC and EER do not depend on the threshold. Numbers are in percent as the paper prints
them, except the AUC (a fraction, as in the paper).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.metrics.spoof import roc_curve, spoof_metrics

COLUMNS = ("TPR@FPR=1%", "TPR@FPR=0.5%", "TPR@FPR=0.1%", "AUC", "EER", "APCER", "BPCER", "ACER")


def _fpr_name(f: float) -> str:
    return f"TPR@FPR={100 * f:g}%"


def flat(m: dict) -> dict:
    """spoof_metrics' dict -> flat, JSON-friendly, percent."""
    out = {_fpr_name(f): 100.0 * t for f, t in m["tpr_at_fpr"].items()}
    out["AUC"] = m["AUC"]
    for k in ("EER", "APCER", "BPCER", "ACER", "HTER", "ACC"):
        out[k] = 100.0 * m[k]
    out.update(threshold=m["threshold"], threshold_source=m["threshold_source"],
               n_live=m["n_live"], n_spoof=m["n_spoof"])
    return out


def evaluate_scores(p_test, y_test, p_val=None, y_val=None, fprs=(0.01, 0.005, 0.001)) -> dict:
    """{"test@val": ..., "test@test": ..., "val": ...} (``test@val`` / ``val`` only when a
    validation split with both classes exists)."""
    fprs = tuple(fprs)
    res = {"test@test": flat(spoof_metrics(p_test, y_test, fprs))}
    res["test@test"]["threshold_from"] = "test (EER point of the test scores)"
    if p_val is not None and len(p_val) and 0 < int(np.sum(y_val)) < len(y_val):
        val = spoof_metrics(p_val, y_val, fprs)
        res["val"] = flat(val)
        res["test@val"] = flat(spoof_metrics(p_test, y_test, fprs, threshold=val["threshold_liveness"],
                                             threshold_scale="liveness"))
        res["test@val"]["threshold_from"] = "val (EER point of the validation scores)"
    return res


def headline(res: dict) -> dict:
    """The paper's columns, threshold from validation when there is one."""
    key = "test@val" if "test@val" in res else "test@test"
    return {"threshold_from": key.split("@")[1], **{c: res[key][c] for c in COLUMNS if c in res[key]}}


def format_table(rows: list[tuple[str, dict]]) -> str:
    """Markdown: one row per (name, flat metrics)."""
    lines = ["| model | threshold | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, res in rows:
        for key in ("test@val", "test@test"):
            if key not in res:
                continue
            m = res[key]
            cells = [f"{m[c]:.4f}" if c == "AUC" else f"{m[c]:.2f}" for c in COLUMNS]
            lines.append(f"| {name} | {key.split('@')[1]} | " + " | ".join(cells) + " |")
    lines.append("| chance | — | — | — | — | 0.5000 | 50.00 | — | — | 50.00 |")
    return "\n".join(lines)


def plot(p_test, y_test, out_dir: Path, title: str, thresholds: dict | None = None) -> list[Path]:
    """``roc.png`` (spoof detection ROC: FPR on live, TPR on spoof) and ``scores.png`` (live and
    spoof score histograms with the thresholds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p, y = np.asarray(p_test, float), np.asarray(y_test).astype(int)
    fpr, tpr, _ = roc_curve(y, p)  # positives = spoof
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, lw=1.5)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set(xlabel="FPR (live accepted as spoof)", ylabel="TPR (spoof detected)", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    roc = out_dir / "roc.png"
    fig.savefig(roc, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(0, 1, 51)
    ax.hist(p[y == 0], bins=bins, histtype="step", lw=1.5, label=f"live ({int((y == 0).sum())})", log=True)
    ax.hist(p[y == 1], bins=bins, histtype="step", lw=1.5, label=f"spoof ({int((y == 1).sum())})", log=True)
    for name, thr in (thresholds or {}).items():
        ax.axvline(thr, ls="--", lw=1, color="k" if name == "val" else "r", label=f"threshold ({name})")
    ax.set(xlabel="spoof probability", ylabel="images", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    hist = out_dir / "scores.png"
    fig.savefig(hist, dpi=110)
    plt.close(fig)
    return [roc, hist]
