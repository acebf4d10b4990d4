"""results/*.json: the README block is what the JSON renders, and the recorded claims (make
cocas_reid-claims, 3 seeds) are what their per-seed arms say; both claims hold on the recorded
runs, so their direction is asserted seed by seed."""
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parents[1]
HOLD = {"bcnet_vs_biometric", "bcnet_vs_clothes"}  # beyond the seed spread on the recorded runs


def test_readme_table_is_generated_from_the_json():
    results.check_readme(HERE)  # fails when they disagree: python table.py --write-readme


def test_recorded_claims_and_their_direction():
    paper = results.load_paper(HERE / "results" / "paper.json")
    data = results.load_reproduced(HERE / "results" / "reproduced.json", {t["id"] for t in paper["tables"]})
    claims = {c["id"]: c for c in data["claims"]}
    assert HOLD <= set(claims)
    for c in claims.values():
        assert c["seeds"] == [0, 1, 2] and all(len(v) == 3 for v in c["arms"].values())
        verdict, diff = results.verdict(c["arms"][c["method"]], c["arms"][c["baseline"]], c["higher_is_better"])
        assert verdict == c["verdict"] and abs(diff["mean"] - c["difference"]["mean"]) < 1e-9
    for cid in HOLD:
        c = claims[cid]
        assert c["verdict"] == "holds", c
        assert min(m - b for m, b in zip(c["arms"][c["method"]], c["arms"][c["baseline"]])) > 0
    rows = {r["method"]: r for r in data["rows"] if r["table"] == "toy"}
    assert len(rows) == 4 and all(r["data"] == "toy" and r["seeds"] == [0, 1, 2] for r in rows.values())
    bc, pixel = rows["BC-Net (ours), Euclidean"], rows["raw 16 x 8 pixels, Euclidean (baseline)"]
    assert bc["metrics"]["mAP"] >= pixel["metrics"]["mAP"] + 20  # the bar for the toy job
