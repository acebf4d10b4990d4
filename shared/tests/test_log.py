import json
import logging
import math

import torch

from shared import log


def test_jsonl_lines_parse(tmp_path):
    w = log.JsonlWriter(tmp_path / "m" / "metrics.jsonl")
    w.write({"epoch": 0, "loss": torch.tensor(0.5), "ar": torch.tensor([1.0, 2.0]), "nan": math.nan})
    w.write({"epoch": 1, "path": tmp_path})
    rows = [json.loads(x) for x in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] == 0.5 and rows[0]["ar"] == [1.0, 2.0] and math.isnan(rows[0]["nan"])
    assert rows[1]["path"] == str(tmp_path)


def test_meters_and_progress():
    m = log.MetricLogger()
    seen = []
    for i in m.log_every(range(5), 2, header="t"):
        m.update(loss=float(i), n=1)
        seen.append(i)
    assert seen == list(range(5))
    assert m.meters["loss"].global_avg == 2.0 and m.meters["loss"].median == 2.0
    assert m.averages() == {"loss": 2.0}
    s = log.SmoothedValue(window_size=2)
    for v in (1, 2, 3):
        s.update(v)
    assert s.avg == 2.5 and s.global_avg == 2.0 and s.max == 3 and s.value == 3


def test_run_info_and_logging(tmp_path, capsys):
    import argparse
    log.setup_logging(tmp_path)
    info = log.run_info(argparse.Namespace(lr=0.1, out=tmp_path), tmp_path)
    logging.getLogger("x").info("hello")
    saved = json.loads((tmp_path / "run_info.json").read_text())
    assert saved["config"] == {"lr": 0.1, "out": str(tmp_path)} and saved["world_size"] == 1
    assert saved["torch"] == torch.__version__ and "git_sha" in info
    assert "hello" in (tmp_path / "log.txt").read_text()


def test_tensorboard_optional(tmp_path):
    tb = log.TensorBoard(tmp_path)
    tb.scalars({"a": 1.0}, step=0)  # works whether or not tensorboard is installed
    tb.close()
