"""The results as data: paper.json and reproduced.json follow the shared schema, every config a
row names exists, the README's results block is what table.py renders from them, and the claim
measured over seeds points the way the paper says where it holds."""
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parents[1]


def test_results_files_and_readme_block_agree():
    paper = results.load_paper(HERE / "results" / "paper.json")
    for t in paper["tables"]:
        for r in t["rows"]:
            assert "config" not in r or (HERE / r["config"]).is_file(), r
    reproduced = results.load_reproduced(HERE / "results" / "reproduced.json", {t["id"] for t in paper["tables"]})
    assert {c["id"] for c in reproduced["claims"]} == {"dmcp_vs_uniform"}
    results.check_readme(HERE)  # fails when the README table and the JSON disagree: python table.py --write-readme


def test_recorded_claim_has_three_seeds_and_a_consistent_verdict():
    claim = results.load_reproduced(HERE / "results" / "reproduced.json")["claims"][0]
    assert claim["seeds"] == [0, 1, 2] and all(len(v) == 3 for v in claim["arms"].values())
    verdict, diff = results.verdict(claim["arms"]["DMCP"], claim["arms"]["uniform"])
    assert verdict == claim["verdict"] and abs(diff["mean"] - claim["difference"]["mean"]) < 1e-9
    assert (Path(HERE / "results" / "accuracy_madds.png")).stat().st_size > 1000
