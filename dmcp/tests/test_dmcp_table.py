"""table.py renders the paper's rows beside ours and draws the accuracy-MAdds plot."""
import json

from dmcp import table


def test_table_renders_paper_and_runs(tmp_path):
    run = tmp_path / "resnet50_2.2g-retrain" / "20200101-000000"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"mflops": 2150.5, "top1": 75.9, "top5": 92.8,
                                                 "target_mflops": 2200.0, "model": "resnet50"}))
    toy = tmp_path / "toy" / "20200101-000000"
    toy.mkdir(parents=True)
    (toy / "results.json").write_text(json.dumps({"mflops": 1.92, "top1": 90.0, "top5": 99.0, "target_mflops": 2.0}))
    (tmp_path / "broken" / "x").mkdir(parents=True)
    (tmp_path / "broken" / "x" / "results.json").write_text("{")
    text = table.main(table.get_args_parser().parse_args(["--runs", str(tmp_path), "--plot", str(tmp_path / "p.png")]))
    assert "| ResNet-50 | 2200M | 76.5 | 76.2 † | 2150.50 | 75.90 |" in text
    assert "| MobileNetV2 (from 1.5x) | 300M | 73.5 | — | — | — | not run |" in text
    assert "| toy | 2.00 | 1.920 | 90.00 | 99.00 |" in text
    assert (tmp_path / "p.png").stat().st_size > 1000
    paper = json.loads((table.HERE / "results" / "paper.json").read_text())
    assert len(paper["rows"]) == 8 and all((table.HERE / "configs" / f"{r['config']}.yaml").is_file()
                                           for r in paper["rows"])
