import argparse

import pytest
import yaml

from shared import config, run


def _parser():
    p = argparse.ArgumentParser("t")
    config.add_runtime_args(p)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--milestones", type=int, nargs="+", default=[7])
    p.add_argument("--name", default="x")
    return p


def test_yaml_sets_defaults_and_flags_override(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("lr: 0.5\nmilestones: [3, 5]\nname: fromyaml\n")
    args = config.parse_args(_parser(), ["--config", str(cfg), "--lr", "0.01"])
    assert args.lr == 0.01  # flag beats file
    assert args.milestones == [3, 5]  # file beats parser default
    assert args.name == "fromyaml"
    assert config.config_name(args) == "exp"
    plain = config.parse_args(_parser(), [])
    assert plain.lr == 0.1 and plain.milestones == [7] and config.config_name(plain) == "default"


def test_dashed_keys_accepted(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output-dir: elsewhere\n")
    assert config.parse_args(_parser(), ["--config", str(cfg)]).output_dir == "elsewhere"


def test_unknown_key_names_key_and_file(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("lr: 0.5\nlearning_rat: 3\n")
    with pytest.raises(config.ConfigError, match=r"bad\.yaml.*'learning_rat'"):
        config.parse_args(_parser(), ["--config", str(cfg)])


@pytest.mark.parametrize("text,msg", [("[1, 2]", "mapping"), ("lr: [unclosed", "not valid YAML")])
def test_malformed_yaml(tmp_path, text, msg):
    cfg = tmp_path / "m.yaml"
    cfg.write_text(text)
    with pytest.raises(config.ConfigError, match=msg):
        config.parse_args(_parser(), ["--config", str(cfg)])


def test_missing_config_file(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.parse_args(_parser(), ["--config", str(tmp_path / "nope.yaml")])


def test_resolved_config_written_and_reloadable(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("lr: 0.5\n")
    args = config.parse_args(_parser(), ["--config", str(cfg), "--name", "cli",
                                         "--output-dir", str(tmp_path / "runs")])
    run_dir, resume = run.resolve_run_dir(args, "paper")
    assert resume is None and run_dir.parent == tmp_path / "runs" / "paper" / "exp"
    out = config.save_config(args, run_dir / "config.yaml")
    saved = yaml.safe_load(out.read_text())
    assert saved["lr"] == 0.5 and saved["name"] == "cli" and saved["milestones"] == [7]
    again = config.parse_args(_parser(), ["--config", str(out)])
    assert again.lr == 0.5 and again.name == "cli"


def test_resume_auto_picks_newest_run_with_checkpoint(tmp_path):
    base = tmp_path / "runs" / "paper" / "default"
    (base / "20260101-000000").mkdir(parents=True)
    (base / "20260101-000000" / "checkpoint_last.pt").write_bytes(b"x")
    (base / "20260102-000000").mkdir()  # newer but empty: not resumable
    args = config.parse_args(_parser(), ["--output-dir", str(tmp_path / "runs"), "--resume", "auto"])
    run_dir, ckpt = run.resolve_run_dir(args, "paper")
    assert run_dir == base / "20260101-000000" and ckpt.name == "checkpoint_last.pt"


def test_toy_default_without_config_and_data_root(tmp_path):
    toy = tmp_path / "configs" / "toy.yaml"
    toy.parent.mkdir()
    toy.write_text("lr: 0.25\n")

    def parser():
        p = _parser()
        p.add_argument("--data-root", default="")
        p.toy_config = str(toy)
        return p

    assert config.parse_args(parser(), []).config == str(toy)
    assert config.parse_args(parser(), []).lr == 0.25
    assert config.parse_args(parser(), ["--data-root", "/d"]).config is None  # real data: no toy config
    other = tmp_path / "other.yaml"
    other.write_text("lr: 0.5\n")
    assert config.parse_args(parser(), ["--config", str(other)]).lr == 0.5


def test_add_runtime_args_names_the_toy_config_and_precision_defaults(tmp_path):
    train = argparse.ArgumentParser("train")
    config.add_runtime_args(train, toy_config=tmp_path / "toy.yaml")
    a = train.parse_args([])
    assert train.toy_config == str(tmp_path / "toy.yaml")
    assert a.amp is True and a.eval_amp is False and a.dist_timeout > 10
    ev = argparse.ArgumentParser("eval")
    config.add_runtime_args(ev, train=False)
    b = ev.parse_args([])
    assert b.amp is False and not hasattr(b, "eval_amp")
    assert ev.parse_args(["--amp"]).amp is True
