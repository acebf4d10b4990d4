"""End to end on the toy Cityscapes tree: training beats the majority class, a killed run resumes
exactly, a 2-process gloo run evaluates every image once, eval.py reproduces training's numbers and
its saved predictions score the same through --pred-dir, the toy default, bad inputs."""
import json
from pathlib import Path

import pytest
import torch

from cdgcnet import engine, train
from cdgcnet import eval as cd_eval
from cdgcnet.toy import make_toy_dataset
from shared import config
from shared.testing import torchrun

HERE = Path(__file__).resolve().parents[1]
TOY = HERE / "configs" / "toy.yaml"
SMALL = ("--dim", "16", "--head-dim", "16", "--aux-dim", "8", "--embed-dim", "8", "--tiny-width", "8",
         "--crop-size", "64", "96", "--batch-size", "2", "--threads", "1", "--device", "cpu", "--print-freq", "1000")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("cdgc") / "toy", train_images=6, val_images=3, test_images=1)


def _args(parser, out, root, *extra):
    return config.parse_args(parser, ["--config", str(TOY), "--data-root", str(root), "--output-dir", str(out),
                                      *SMALL, *extra])


def test_no_arguments_means_the_toy_config():
    args = config.parse_args(train.get_args_parser(), [])
    assert Path(args.config) == TOY and args.backbone == "tiny" and args.compare == ["cdgc", "plain"]
    args = config.parse_args(cd_eval.get_args_parser(), [])
    assert Path(args.config) == TOY and args.amp is False  # evaluation: fp32 unless --amp


def test_short_toy_training_beats_the_majority_class(tmp_path):
    """The toy config's CDGC network, 60 iterations on 16 toy pictures (~15 CPU-s): far above the
    majority-class baseline on 4 validation pictures (seeded: 14.9 against 2.3 mIoU when written)."""
    root = make_toy_dataset(tmp_path / "toy", train_images=16, val_images=4, test_images=1)
    args = config.parse_args(train.get_args_parser(), [
        "--config", str(TOY), "--data-root", str(root), "--output-dir", str(tmp_path), "--compare", "cdgc",
        "--batch-size", "4", "--iters", "60", "--lr", "0.05", "--threads", "1", "--print-freq", "1000"])
    res = train.main(args)["cdgc"][1]
    base = res["baseline_majority_miou"]
    assert res["num_images"] == 4 and 0 < base < 5
    assert res["miou"] >= base + 8 and res["miou"] >= 4 * base, (res["miou"], base)


def test_killed_run_resumes_exactly(tmp_path, toy, monkeypatch):
    common = ("--compare", "cdgc", "--iters", "5", "--checkpoint-period", "2", "--max-nodes", "20")
    full = train.main(_args(train.get_args_parser(), tmp_path / "a", toy, *common))["cdgc"][0]
    real, calls = engine.train_step, []

    def dies_at_the_third_step(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(train, "train_step", dies_at_the_third_step)
    with pytest.raises(KeyboardInterrupt):
        train.main(_args(train.get_args_parser(), tmp_path / "b", toy, *common))
    monkeypatch.setattr(train, "train_step", real)
    assert torch.load(next((tmp_path / "b").rglob("checkpoint_last.pt")), weights_only=True)["step"] == 2
    resumed = train.main(_args(train.get_args_parser(), tmp_path / "b", toy, *common, "--resume", "auto"))["cdgc"][0]
    assert resumed.parent.name == "toy-cdgc" and resumed.parent.parent.name == "cdgcnet"
    a = torch.load(full / "checkpoint_last.pt", weights_only=True)
    b = torch.load(resumed / "checkpoint_last.pt", weights_only=True)
    assert a["step"] == b["step"] == 5
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-6, rtol=0, msg=k)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (full, resumed))
    assert ra["miou"] == pytest.approx(rb["miou"], abs=1e-9)
    # resuming with another recipe (here: a longer schedule) is refused, naming the checkpoint
    with pytest.raises(config.ConfigError, match=r"checkpoint_last.pt: was trained with other settings \(iters: 5 -> 6\)"):
        train.main(_args(train.get_args_parser(), tmp_path / "b", toy, *common, "--resume", "auto", "--iters", "6"))


def test_two_process_gloo_run_and_eval_reproduce_each_other(tmp_path, toy):
    proc = torchrun(HERE / "train.py", "--config", TOY, "--data-root", toy, "--output-dir", tmp_path, *SMALL,
                    "--compare", "plain", "--iters", "2", "--eval-mode", "slide", nproc=2, cwd=HERE)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = next((tmp_path / "cdgcnet" / "toy-plain").iterdir())
    res = json.loads((run / "results.json").read_text())
    assert res["num_images"] == 3 and res["mode"] == "slide" and 0 <= res["miou"] <= 100
    assert "global batch 2 = 2 process(es) x 1" in (run / "log.txt").read_text()
    # one process, same checkpoint: the sharded evaluation summed over ranks equals it exactly
    args = _args(cd_eval.get_args_parser(), tmp_path, toy, "--compare", "plain", "--mode", "slide",
                 "--save-pred", str(tmp_path / "pred"))
    single = cd_eval.main(args)["plain"]
    for key in ("miou", "aacc", "macc", "category_miou"):
        assert single[key] == pytest.approx(res[key], abs=1e-9), key
    # the saved labelId PNGs score the same through --pred-dir (no model)
    scored = cd_eval.main(_args(cd_eval.get_args_parser(), tmp_path, toy, "--pred-dir", str(tmp_path / "pred")))[None]
    assert scored["miou"] == pytest.approx(single["miou"], abs=1e-9)
    names = sorted(p.name for p in (tmp_path / "pred").iterdir() if p.suffix == ".png")
    assert names[0] == "lindau_000000_000019_leftImg8bit.png" and len(names) == 3


def test_test_split_writes_predictions_only(tmp_path, toy):
    train.main(_args(train.get_args_parser(), tmp_path, toy, "--compare", "cdgc", "--iters", "1"))
    out = cd_eval.main(_args(cd_eval.get_args_parser(), tmp_path, toy, "--compare", "cdgc", "--split", "test",
                             "--mode", "ms_flip", "--scales", "0.75", "1.0", "--save-pred", str(tmp_path / "p")))
    assert "miou" not in out["cdgc"] and out["cdgc"]["num_images"] == 1 and out["cdgc"]["flip"] is True
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["berlin_000000_000019_leftImg8bit.png"]


def test_bad_inputs_fail_early(tmp_path, toy):
    with pytest.raises(ValueError, match="larger than the 6 training images"):
        train.main(_args(train.get_args_parser(), tmp_path, toy, "--batch-size", "8", "--compare", "cdgc"))
    with pytest.raises(FileNotFoundError, match="--data-root .*nowhere: no such folder"):
        train.main(_args(train.get_args_parser(), tmp_path, tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no checkpoint_last.pt under .*toy-cdgc"):
        cd_eval.main(_args(cd_eval.get_args_parser(), tmp_path / "empty", toy))

    class NaNModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x, gt=None):
            return {"final": self.w * torch.full((1, 3, 2, 2), float("nan")), "coarse": torch.zeros(1, 3, 2, 2)}

    from cdgcnet.loss import SegCriterion
    model = NaNModel()
    with pytest.raises(FloatingPointError, match=r"non-finite loss at a training step: terms \['loss_final'"):
        engine.train_step(model, SegCriterion(ohem=False), torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.long),
                          torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), False)
