"""Two-stage argparse configuration (as timm's scripts do it).

Stage one reads only `--config file.yaml`, whose keys become the parser's defaults (an unknown key
is an error naming the key and the file); stage two parses the command line, so explicit flags
override the file. Argparse defaults with `help=` stay the single source of truth for
hyper-parameters; a YAML per paper-table row only changes defaults. The resolved arguments are
written as `config.yaml` in the run folder and stored in every checkpoint.

The toy default: an entry script run with neither `--config` nor `--data-root`
(`cd <paper> && python train.py`) runs its package's `configs/toy.yaml` on the embedded toy data
(`add_runtime_args(parser, toy_config=...)` names the file).

Run folders live in `shared.run`.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from shared import dist

__all__ = ["ConfigError", "add_runtime_args", "parse_args", "load_yaml", "save_config",
           "config_name", "to_plain", "default_output_dir"]


class ConfigError(ValueError):
    """A configuration file or value that cannot be used, naming the file and the key."""


def default_output_dir() -> str:
    """`<repo>/runs` for the editable checkout (so `cd <paper> && python train.py` and
    `python -m <paper>.train` from the root write to the same place); `./runs` otherwise."""
    root = Path(__file__).resolve().parents[1]
    return str(root / "runs") if (root / "pyproject.toml").is_file() else "runs"


def add_runtime_args(parser: argparse.ArgumentParser, *, toy_config=None,
                     train: bool = True) -> argparse.ArgumentParser:
    """The flags every entry script shares.

    toy_config: the package's `configs/toy.yaml`; used when neither `--config` nor `--data-root`
        is given (the toy default).
    train: training scripts autocast in bf16 on CUDA by default (`--no-amp` turns it off) and
        evaluate in fp32 unless `--eval-amp`; evaluation and prediction scripts (`train=False`)
        run fp32 unless `--amp` is given, so a checkpoint's numbers do not depend on the GPU.
    """
    g = parser.add_argument_group("runtime")
    g.add_argument("--config", default=None, help="YAML file whose keys set this parser's defaults "
                   "(default: configs/toy.yaml when --data-root is not given either)")
    g.add_argument("--output-dir", default=default_output_dir(), help="root of run folders (default: <repo>/runs)")
    g.add_argument("--resume", default="", help="'' (fresh run), 'auto' (newest run of this config) or a checkpoint path")
    g.add_argument("--seed", type=int, default=0, help="random seed (each rank uses seed + rank)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    if train:
        g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                       help="bf16 autocast for training on CUDA (no effect on CPU)")
        g.add_argument("--eval-amp", action=argparse.BooleanOptionalAction, default=False,
                       help="bf16 autocast also for evaluation on CUDA (default: evaluate in fp32)")
    else:
        g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                       help="bf16 autocast for inference on CUDA (default: fp32, the reference numbers)")
    g.add_argument("--workers", type=int, default=2, help="data-loader worker processes")
    g.add_argument("--dist-timeout", type=float, default=dist.DEFAULT_TIMEOUT_MINUTES,
                   help="minutes a collective waits for the slowest rank before the run fails")
    if toy_config is not None:
        parser.toy_config = str(toy_config)
    return parser


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value at the top level, got {type(data).__name__}")
    return data


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """YAML (if `--config`) sets defaults, the command line overrides; keys use - or _."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("--data-root", default=None)
    known, _ = pre.parse_known_args(argv)
    config_path = known.config if known.config is not None else parser.get_default("config")
    toy = getattr(parser, "toy_config", None)
    if not config_path and toy and not known.data_root and not parser.get_default("data_root"):
        config_path = toy  # the toy default: no config and no dataset -> the embedded toy data
    if config_path:
        cfg = load_yaml(config_path)
        dests = {a.dest for a in parser._actions}
        defaults = {}
        for key, value in cfg.items():
            dest = str(key).replace("-", "_")
            if dest not in dests or dest in ("help", "config"):
                raise ConfigError(f"{config_path}: unknown key {key!r} (not an option of {parser.prog})")
            defaults[dest] = value
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    args.config = config_path
    return args


def config_name(args) -> str:
    return Path(args.config).stem if getattr(args, "config", None) else "default"


def to_plain(value):
    """Paths, tuples and other values as plain YAML / weights_only-loadable values."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return str(value)


def save_config(args, path: str | os.PathLike) -> Path | None:
    """Write the resolved arguments as YAML (rank 0 only); loadable again with --config."""
    if not dist.is_main():
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: to_plain(v) for k, v in sorted(vars(args).items()) if k != "config"}
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    return path
