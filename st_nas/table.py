"""The paper's ImageNet table beside ours (results/paper.json, results/reproduced.json), the
toy rows, the claims measured over seeds, and an accuracy-MAdds plot.

    python table.py [--write-readme] [--check] [--html] [--plot results/accuracy_madds.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parent


def plot(out: Path) -> Path:
    """Top-1 against MAdds: the paper's ST-NAS-A/B, its peers and our ImageNet rows; our toy rows
    in a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = results.load_paper(HERE / "results" / "paper.json")
    ours = results.load_reproduced(HERE / "results" / "reproduced.json")
    fig, (ax, toy) = plt.subplots(1, 2, figsize=(10, 4))
    for r in next(t for t in paper["tables"] if t["id"] == "imagenet")["rows"]:
        if r.get("MAdds (M)") is None:
            continue
        star = r["method"].startswith("ST-NAS")
        ax.plot(r["MAdds (M)"], r["top-1"], "o" if star else "x", color="C0" if star else "gray")
        ax.annotate(r["method"], (r["MAdds (M)"], r["top-1"]), fontsize=7, color="C0" if star else "gray")
    for r in ours["rows"]:
        m = r["metrics"]
        target = ax if r["table"] == "imagenet" else toy
        if m.get("MAdds (M)") is not None and m.get("top-1") is not None:
            target.plot(m["MAdds (M)"], m["top-1"], "*", ms=12, color="C3")
            target.annotate(r["method"], (m["MAdds (M)"], m["top-1"]), fontsize=7, color="C3")
    ax.set(xlabel="MAdds (M, 224 px)", ylabel="ImageNet top-1 (%)", title="ImageNet")
    toy.set(xlabel="MAdds (M, 32 px)", ylabel="toy val top-1 (%)", title="toy data (ours)")
    for a in (ax, toy):
        a.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plot", default=str(HERE / "results" / "accuracy_madds.png"), help="accuracy-MAdds PNG")
    known, rest = pre.parse_known_args(argv)
    text = results.table_main(HERE, rest)
    print(f"plot: {plot(Path(known.plot))}")
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
