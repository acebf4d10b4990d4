"""The paper's tables beside ours (results/paper.json, results/reproduced.json) and the
accuracy-MAdds plot of our toy rows.

    python table.py [--write-readme] [--check] [--html] [--plot results/accuracy_madds.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parent


def plot_accuracy_madds(path) -> Path | None:
    """top-1 against MAdds for the toy rows of reproduced.json (one point per wiring)."""
    rows = [r for r in results.load_reproduced(HERE / "results" / "reproduced.json")["rows"] if r["table"] == "toy"]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for r in rows:
        m = r["metrics"]
        ax.errorbar(m["MAdds (M)"], m["top-1"], yerr=m.get("top-1 std", 0.0), fmt="o", capsize=3)
        ax.annotate(r["method"], (m["MAdds (M)"], m["top-1"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.margins(x=0.35, y=0.15)
    ax.set_xlabel("MAdds (M), per 32 px image")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("toy data: wirings, mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--plot", default="")
    known, rest = p.parse_known_args(argv)
    text = results.table_main(HERE, rest)
    if known.plot:
        print(f"plot: {plot_accuracy_madds(known.plot)}")
    return text


if __name__ == "__main__":
    main()
