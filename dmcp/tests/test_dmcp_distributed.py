"""A killed search resumes to the same weights, alphas and counters as an uninterrupted one; a
two-process gloo search (torchrun) runs, validates every image once, lands in its band and takes
as many steps per epoch as one process with the same global batch; --scale-lr scales every
learning rate, alpha's too."""
import json
from pathlib import Path

import pytest
import torch

from dmcp import build, engine, prune
from shared import config
from shared.testing import torchrun

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "dmcp" / "configs" / "toy.yaml"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from dmcp.toy import make_toy_dataset
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "dmcp", train_per_class=60, val_per_class=20)


def _args(parser, out, root, *extra):
    return config.parse_args(parser, ["--config", str(TOY), "--device", "cpu", "--output-dir", str(out),
                                      "--toy-root", str(root), "--toy-train-per-class", "60",
                                      "--toy-val-per-class", "20", "--batch-size", "32", *extra])


def test_killed_search_resumes_to_the_same_state(tmp_path, toy_root, monkeypatch):
    common = ("--epochs", "2", "--stage1-fraction", "0.5", "--no-then-retrain", "--no-export-program",
              "--ds-samples", "0", "--toy-train-per-class", "20", "--val-every", "1")
    full_dir, _ = prune.main(_args(prune.get_args_parser(), tmp_path / "a", toy_root, *common))

    real = engine.search_one_epoch
    calls = []

    def dies_in_second_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(prune, "search_one_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        prune.main(_args(prune.get_args_parser(), tmp_path / "b", toy_root, *common))
    monkeypatch.setattr(prune, "search_one_epoch", real)
    resumed_dir, _ = prune.main(_args(prune.get_args_parser(), tmp_path / "b", toy_root, *common, "--resume", "auto"))
    a = torch.load(full_dir / "checkpoint_last.pt", weights_only=True)
    b = torch.load(resumed_dir / "checkpoint_last.pt", weights_only=True)
    assert a["step"] == b["step"] and a["search"]["random_prob"] == b["search"]["random_prob"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-6, rtol=0, msg=k)
    assert json.loads((full_dir / "arch.json").read_text())["gates"] == \
        json.loads((resumed_dir / "arch.json").read_text())["gates"]


def test_two_process_ddp_search(tmp_path, toy_root):
    proc = torchrun(ROOT / "dmcp" / "prune.py", "--config", TOY, "--device", "cpu", "--epochs", "2",
                    "--batch-size", "16", "--output-dir", tmp_path, "--toy-root", toy_root,
                    "--toy-train-per-class", "60", "--toy-val-per-class", "20", "--no-then-retrain",
                    "--no-export-program", "--ds-samples", "0", cwd=ROOT / "dmcp")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "--batch-size: global batch 16 = 2 process(es) x 8" in proc.stdout + proc.stderr
    run = next((tmp_path / "dmcp" / "toy").iterdir())
    res = json.loads((run / "results.json").read_text())
    assert 0.95 * res["target_madds"] <= res["madds"] <= res["target_madds"]
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rec) == 2 and rec[-1]["val_images"] == 200  # every validation image once across 2 ranks
    assert rec[-1]["train_stage"] == 2 and torch.isfinite(torch.tensor(rec[-1]["train_budget"]))
    # --batch-size is the global batch: 600 images / 16 = 37 steps per epoch, as with one process
    assert [r["step"] for r in rec] == [37, 74]


def test_scale_lr_scales_every_learning_rate(tmp_path, toy_root):
    args = _args(prune.get_args_parser(), tmp_path, toy_root, "--scale-lr", "--batch-size", "512")
    assert build.lr_scale(args) == 0.25  # 512 / the official 2048
    lr_fn, arch_lr_fn = prune.search_schedules(args, steps_per_epoch=10, arch_start=20)
    plain = _args(prune.get_args_parser(), tmp_path, toy_root, "--no-scale-lr", "--batch-size", "512")
    lr0, arch0 = prune.search_schedules(plain, steps_per_epoch=10, arch_start=20)
    for step in (0, 5, 25, 59):
        assert lr_fn(step) == pytest.approx(0.25 * lr0(step))
        assert arch_lr_fn(step) == pytest.approx(0.25 * arch0(step))  # alpha's learning rate too
