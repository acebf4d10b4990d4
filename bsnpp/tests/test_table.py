import json

from bsnpp import table


def test_table_has_paper_rows_marks_unverified_and_adds_runs(tmp_path):
    run = tmp_path / "toy" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(
        {"dataset": "anet", "config": "toy", "metrics": {"AR@1": 20.0, "AR@5": 40.0, "AR@10": 50.0,
                                                         "AR@100": 70.0, "AUC": 61.234}}))
    (run / "eval_checkpoint_last").mkdir()
    (run / "eval_checkpoint_last" / "results.json").write_text(json.dumps({"metrics": {"AUC": 1.0}}))
    text = table.render("anet", tmp_path)
    assert "| BMN (paper) | — | — | — | 75.01 | 67.10 |" in text
    assert "BSN++ (paper) †" in text
    assert "| ours: toy (20260101-000000) | 20.00 | 40.00 | 50.00 | 70.00 | 61.23 |" in text
    assert text.count("ours:") == 1  # re-evaluations are not separate rows
    thumos = table.render("thumos14", tmp_path)
    assert "AR@1000" in thumos and "ours" not in thumos
