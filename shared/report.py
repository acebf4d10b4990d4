"""`make report`: one static page with every paper's table, ours beside the paper's, the claims
measured over seeds, the plots the packages draw, and the commands that reproduce each row.

    python -m shared.report [--out report]      # writes report/index.html (+ report/img/)

Built only from committed files (`<paper>/results/paper.json`, `reproduced.json`, `*.png`), so it
needs no runs and no GPU; it opens from disk (no server, no framework: one small inline script
only marks images that failed to load).
"""
from __future__ import annotations

import argparse
import html
import shutil
from pathlib import Path

from shared import results

ROOT = Path(__file__).resolve().parents[1]

# folder -> (title, venue, link): the ten papers, planned ones included.
PAPERS = {
    "bsnpp": ("BSN++: Complementary Boundary Regressor with Scale-Balanced Relation Modeling for Temporal "
              "Action Proposal Generation", "AAAI 2021", "https://arxiv.org/abs/2009.07641"),
    "actnet_challenge": ("Temporal Action Localization, ActivityNet Challenge 2020 (CBG + SIRM)", "CVPR-W 2020",
                         "https://arxiv.org/abs/2007.09883"),
    "topo_connectivity": ("Learning Connectivity of Neural Networks from a Topological Perspective", "ECCV 2020",
                          "https://arxiv.org/abs/2008.08261"),
    "celeba_spoof": ("CelebA-Spoof: Large-Scale Face Anti-Spoofing Dataset with Rich Annotations", "ECCV 2020",
                     "https://arxiv.org/abs/2007.12342"),
    "cdgcnet": ("Class-wise Dynamic Graph Convolution for Semantic Segmentation", "ECCV 2020",
                "https://arxiv.org/abs/2007.09690"),
    "st_nas": ("Powering One-shot Topological NAS with Stabilized Share-parameter Proxy", "ECCV 2020",
               "https://arxiv.org/abs/2005.10511"),
    "openimages_det": ("Large-scale Object Detection in the Wild from Imbalanced Multi-Labels", "CVPR 2020",
                       "https://arxiv.org/abs/2005.08455"),
    "cocas_reid": ("COCAS: A Large-Scale Clothes Changing Person Dataset for Re-identification", "CVPR 2020",
                   "https://arxiv.org/abs/2005.07862"),
    "dmcp": ("DMCP: Differentiable Markov Channel Pruning for Neural Networks", "CVPR 2020",
             "https://arxiv.org/abs/2005.03354"),
    "eql": ("Equalization Loss for Long-Tailed Object Recognition", "CVPR 2020", "https://arxiv.org/abs/2003.05176"),
}

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.ours td { background: #eef6ff; font-weight: 600; }
tr.verdict-holds td:last-child { color: #0a6b2a; font-weight: 600; }
tr.verdict-reversed td:last-child { color: #a31515; font-weight: 600; }
tr.verdict-not-shown td:last-child { color: #8a6d00; }
.status { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; font-size: 0.8em; color: #fff; }
.status-toy-verified { background: #2b6cb0; } .status-real-data-run { background: #2f855a; }
.status-not-yet { background: #a0aec0; } .status-planned { background: #718096; }
figure { display: inline-block; margin: 0.5em; } figure img { max-width: 480px; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
.missing { color: #a31515; }
table.summary td { text-align: left; }
"""

# Marks <body data-broken-images="N"> once the page has loaded (the browser test reads it).
SCRIPT = """window.addEventListener('load', function () {
  var bad = Array.prototype.filter.call(document.images, function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.setAttribute('data-broken-images', String(bad.length));
  bad.forEach(function (i) { i.insertAdjacentHTML('afterend', '<p class="missing">missing image: ' + i.getAttribute('src') + '</p>'); });
});"""


def status(package_dir: Path) -> str:
    """planned (no package) | not yet (no reproduced numbers) | toy-verified | real-data run."""
    if not (package_dir / "results" / "paper.json").is_file():
        return "planned"
    rows = results.load_reproduced(package_dir / "results" / "reproduced.json")
    entries = rows["rows"] + rows["claims"]
    if not entries:
        return "not yet"
    return "real-data run" if any(r.get("data", "toy") != "toy" for r in entries) else "toy-verified"


def section(name: str, out: Path, root: Path = ROOT) -> str:
    e = html.escape
    title, venue, link = PAPERS[name]
    pkg = root / name
    st = status(pkg)
    parts = [f"<section id='paper-{name}' data-status='{e(st)}'>",
             f"<h2><a href='{e(link)}'>{e(title)}</a></h2>",
             f"<p>{e(venue)} · folder <code>{name}/</code> · <span class='status status-{st.replace(' ', '-')}'>"
             f"{e(st)}</span></p>"]
    if st == "planned":
        parts.append("<p>Planned: not implemented yet.</p></section>")
        return "\n".join(parts)
    try:
        paper = results.load_paper(pkg / "results" / "paper.json")
        reproduced = results.load_reproduced(pkg / "results" / "reproduced.json", {t["id"] for t in paper["tables"]})
    except results.ResultsError as err:  # one broken package must not hide the others
        parts.append(f"<p class='missing results-error'>results files unusable: {e(str(err))}</p></section>")
        return "\n".join(parts)
    if paper.get("source"):
        parts.append(f"<p class='source'>Paper numbers: {e(paper['source'])}</p>")
    parts.append(results.render_html(paper, reproduced))
    plots = sorted((pkg / "results").glob("*.png"))
    if plots:
        (out / "img" / name).mkdir(parents=True, exist_ok=True)
        parts.append("<div class='plots'>")
        for png in plots:
            shutil.copy2(png, out / "img" / name / png.name)
            parts.append(f"<figure><img src='img/{name}/{e(png.name)}' alt='{e(png.stem)}'>"
                         f"<figcaption>{e(png.stem.replace('_', ' '))}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def summary(root: Path = ROOT) -> str:
    """One row per paper: status, and how its measured claims came out."""
    e = html.escape
    rows = []
    for name in PAPERS:
        pkg = root / name
        st = status(pkg)
        verdicts = ""
        if st != "planned":
            try:
                claims = results.load_reproduced(pkg / "results" / "reproduced.json")["claims"]
            except results.ResultsError:
                claims = []
            verdicts = "; ".join(f"{c['claim']}: {c['verdict']}" for c in claims) or "—"
        rows.append(f"<tr><td><a href='#paper-{name}'>{name}</a></td><td>{e(st)}</td><td>{e(verdicts)}</td></tr>")
    return ("<table class='summary'><thead><tr><th>paper</th><th>status</th><th>central claim(s), measured</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def build(out: Path, root: Path = ROOT) -> Path:
    out = Path(out)
    if (out / "img").exists():
        shutil.rmtree(out / "img")
    out.mkdir(parents=True, exist_ok=True)
    body = "\n".join(section(n, out, root) for n in PAPERS)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cv2020-repro: ten 2020 papers, reproduced</title>
<style>{CSS}</style></head>
<body data-broken-images="unknown">
<h1>cv2020-repro: the papers' tables beside ours</h1>
<p>Each section shows the paper's numbers († = not checked against the paper itself), our reproduced rows
(bold, with the data they were measured on), the paper's central comparison measured over seeds, and the
plots of our runs. Built by <code>make report</code> from <code>&lt;paper&gt;/results/*.json</code>.</p>
{summary(root)}
{body}
<script>{SCRIPT}</script>
</body></html>
"""
    (out / "index.html").write_text(page)
    return out / "index.html"


def main(argv=None):
    p = argparse.ArgumentParser("report", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "report"), help="output folder (index.html and img/)")
    args = p.parse_args(argv)
    path = build(Path(args.out))
    print(f"report: {path}")
    return path


if __name__ == "__main__":
    main()
