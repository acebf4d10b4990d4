"""Run folders: sub-run names, finding the newest checkpoint, clear errors when there is none."""
import argparse

import pytest

from shared import config, run


def _args(tmp_path, *argv):
    p = argparse.ArgumentParser("t")
    config.add_runtime_args(p)
    p.add_argument("--checkpoint", default="")
    return config.parse_args(p, ["--output-dir", str(tmp_path / "runs"), *argv])


def test_sub_runs_are_named_after_the_config(tmp_path):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("seed: 1\n")
    args = _args(tmp_path, "--config", str(cfg))
    assert run.run_name(args) == "toy" and run.run_name(args, "retrain") == "toy-retrain"
    main_dir, _ = run.resolve_run_dir(args, "paper")
    sub_dir, resume = run.resolve_run_dir(args, "paper", name="retrain")
    assert main_dir.parent == tmp_path / "runs" / "paper" / "toy"
    assert sub_dir.parent == tmp_path / "runs" / "paper" / "toy-retrain" and resume is None
    assert run.newest_run_dir("paper", "toy-retrain", output_dir=tmp_path / "runs") == sub_dir


def test_newest_run_checkpoint_and_its_error(tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(FileNotFoundError, match=r"paper/toy.*make paper-train"):
        run.newest_run_checkpoint("paper", "toy", output_dir=out, hint="make paper-train")
    assert run.newest_run_checkpoint("paper", "toy", required=False, output_dir=out) is None
    old, new, empty = (out / "paper" / "toy" / s for s in ("20260101-000000", "20260102-000000", "20260103-000000"))
    for d in (old, new, empty):
        d.mkdir(parents=True)
    (old / "checkpoint_last.pt").write_bytes(b"a")
    (new / "checkpoint_last.pt").write_bytes(b"b")
    (new / "checkpoint_3.pt").write_bytes(b"c")
    assert run.newest_run_checkpoint("paper", "toy", output_dir=out) == new / "checkpoint_last.pt"
    (empty / "checkpoint_7.pt").write_bytes(b"d")
    assert run.newest_run_checkpoint("paper", "toy", output_dir=out, name=None) == empty / "checkpoint_7.pt"


def test_find_checkpoint_prefers_the_flag_and_checks_it(tmp_path):
    given = tmp_path / "my.pt"
    given.write_bytes(b"x")
    assert run.find_checkpoint(_args(tmp_path, "--checkpoint", str(given)), "paper") == given
    with pytest.raises(FileNotFoundError, match="no such file"):
        run.find_checkpoint(_args(tmp_path, "--checkpoint", str(tmp_path / "missing.pt")), "paper")
    with pytest.raises(FileNotFoundError, match=r"default-retrain.*pass --checkpoint"):
        run.find_checkpoint(_args(tmp_path), "paper", name="retrain")


def test_resume_path_must_exist(tmp_path):
    with pytest.raises(config.ConfigError, match="no such checkpoint"):
        run.resolve_run_dir(_args(tmp_path, "--resume", str(tmp_path / "nope.pt")), "paper")
