"""Two-stage argparse configuration (as timm's scripts do it).

Stage one reads only `--config file.yaml`, whose keys become the parser's defaults (an unknown key
is an error naming the key and the file); stage two parses the command line, so explicit flags
override the file. Argparse defaults with `help=` stay the single source of truth for
hyper-parameters; a YAML per paper-table row only changes defaults. The resolved arguments are
written as `config.yaml` in the run folder and stored in every checkpoint.

Run folders: `<output-dir>/<paper>/<config-name>/<timestamp>/`; `--resume auto` continues the
newest run of the same config that holds a checkpoint.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
from pathlib import Path

import yaml

from shared import dist

__all__ = ["ConfigError", "add_runtime_args", "parse_args", "load_yaml", "save_config",
           "resolve_run_dir", "config_name", "to_plain",
           "newest_run_checkpoint", "default_output_dir"]


class ConfigError(ValueError):
    """A configuration file or value that cannot be used, naming the file and the key."""


def default_output_dir() -> str:
    """`<repo>/runs` for the editable checkout (so `cd <paper> && python train.py` and
    `python -m <paper>.train` from the root write to the same place); `./runs` otherwise."""
    root = Path(__file__).resolve().parents[1]
    return str(root / "runs") if (root / "pyproject.toml").is_file() else "runs"


def add_runtime_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags every entry script shares."""
    g = parser.add_argument_group("runtime")
    g.add_argument("--config", default=None, help="YAML file whose keys set this parser's defaults")
    g.add_argument("--output-dir", default=default_output_dir(), help="root of run folders (default: <repo>/runs)")
    g.add_argument("--resume", default="", help="'' (fresh run), 'auto' (newest run of this config) or a checkpoint path")
    g.add_argument("--seed", type=int, default=0, help="random seed (each rank uses seed + rank)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="bf16 autocast on CUDA (no effect on CPU)")
    g.add_argument("--workers", type=int, default=2, help="data-loader worker processes")
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
    known, _ = pre.parse_known_args(argv)
    config_path = known.config if known.config is not None else parser.get_default("config")
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


def newest_run_checkpoint(output_dir, paper: str, config: str,
                          name: str | None = "checkpoint_last.pt") -> Path | None:
    """The checkpoint of the newest run folder `<output_dir>/<paper>/<config>/<timestamp>/` that
    has one: the file `name`, or with name=None the run's latest checkpoint (checkpoint_last.pt,
    else the highest-numbered one). None when no run has it."""
    from shared.checkpoint import latest_checkpoint

    base = Path(output_dir) / paper / config
    runs = sorted((p for p in base.glob("*") if p.is_dir()), reverse=True) if base.is_dir() else []
    for run in runs:
        ckpt = latest_checkpoint(run) if name is None else (run / name if (run / name).is_file() else None)
        if ckpt is not None:
            return ckpt
    return None


def resolve_run_dir(args, paper: str) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from or None), identical on every rank.

    `--resume auto`: the newest `<output-dir>/<paper>/<config>/<timestamp>/` holding a checkpoint
    (a fresh folder when there is none); `--resume PATH`: continue in that checkpoint's folder.
    """
    base = Path(args.output_dir) / paper / config_name(args)
    choice = None
    if dist.is_main():
        run_dir, ckpt = None, None
        if args.resume == "auto":
            ckpt = newest_run_checkpoint(args.output_dir, paper, config_name(args), name=None)
            run_dir = ckpt.parent if ckpt is not None else None
        elif args.resume:
            ckpt = Path(args.resume)
            if not ckpt.is_file():
                raise ConfigError(f"--resume {args.resume}: no such checkpoint file")
            run_dir = ckpt.parent
        if run_dir is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = base / stamp
            i = 1
            while run_dir.exists():
                run_dir = base / f"{stamp}-{i}"
                i += 1
            run_dir.mkdir(parents=True)
        choice = (str(run_dir), str(ckpt) if ckpt else None)
    choice = dist.broadcast_object(choice)
    return Path(choice[0]), (Path(choice[1]) if choice[1] else None)
