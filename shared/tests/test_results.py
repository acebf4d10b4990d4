"""Results as data: validation, verdicts, the README block round trip."""
import json

import pytest

from shared import results

PAPER = {"paper": "P", "source": "s", "tables": [
    {"id": "t1", "title": "Table 1", "columns": ["AP", "AR"],
     "rows": [{"method": "A (paper)", "AP": 50.0, "verified": True}, {"method": "B (paper)", "AR": 1.5}]}]}


def _package(tmp_path, paper=PAPER):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "paper.json").write_text(json.dumps(paper))
    (tmp_path / "README.md").write_text(f"# x\n\n{results.RESULTS_BEGIN}\nold\n{results.RESULTS_END}\n\ntail\n")
    return tmp_path


def test_verdicts():
    assert results.verdict([3, 4, 5], [1, 2, 3])[0] == "holds"
    assert results.verdict([1, 2, 3], [3, 4, 5])[0] == "reversed"
    assert results.verdict([1, 5, 3], [3, 2, 4])[0] == "not shown"
    assert results.verdict([10, 11, 12], [12, 13, 14], higher_is_better=False)[0] == "holds"  # e.g. ACER
    with pytest.raises(ValueError):
        results.verdict([1, 2], [1])


def test_readme_round_trip_and_check(tmp_path):
    pkg = _package(tmp_path)
    with pytest.raises(results.ResultsError, match="differs"):
        results.check_readme(pkg)
    row = results.reproduced_row("t1", "ours", {"AP": 40.0}, command="make x-train", data="toy")
    c = results.claim("c1", "A beats B", "AP", {"A": [3, 4, 5], "B": [1, 2, 3]}, "A", "B", seeds=[0, 1, 2],
                      command="make x-claims", data="toy")
    results.update_reproduced(pkg / "results" / "reproduced.json", rows=[row], claims=[c])
    text = results.table_main(pkg, ["--write-readme"])
    assert "| A (paper) | 50.00 | — |" in text and "B (paper) †" in text and "**ours [toy]** | 40.00" in text
    assert "| A beats B | AP | 4.00 ± 1.00 | 2.00 ± 1.00 | +2.00 ± 0.00 | 3 | holds |" in text
    results.check_readme(pkg)
    readme = (pkg / "README.md").read_text()
    assert readme.endswith("\ntail\n") and "\nold\n" not in readme
    html = results.render_html(results.load_paper(pkg / "results" / "paper.json"),
                               results.load_reproduced(pkg / "results" / "reproduced.json"))
    assert "data-table='t1'" in html and "verdict-holds" in html
    # replacing an entry keeps one copy
    results.update_reproduced(pkg / "results" / "reproduced.json", rows=[row])
    assert len(results.load_reproduced(pkg / "results" / "reproduced.json")["rows"]) == 1


def test_bad_files_are_named(tmp_path):
    bad = dict(PAPER, tables=[dict(PAPER["tables"][0], rows=[{"method": "x", "APx": 1}])])
    pkg = _package(tmp_path, bad)
    with pytest.raises(results.ResultsError, match=r"paper\.json.*APx"):
        results.load_paper(pkg / "results" / "paper.json")
    (pkg / "results" / "reproduced.json").write_text("{not json")
    with pytest.raises(results.ResultsError, match="reproduced.json: not valid JSON"):
        results.load_reproduced(pkg / "results" / "reproduced.json")
