"""Run folders: where a run lives, how a sub-run is named, how a checkpoint is found again.

Layout: `<output-dir>/<paper>/<run-name>/<timestamp>/`, where the run name is the config's stem
(`toy`, `activitynet`), or `<config>-<name>` for a sub-run of that config: a retraining after a
search (`toy-retrain`), one variant of several (`toy-AENet_C`), a second model trained by the same
pipeline (`toy-classifier`). `--resume auto` continues the newest run folder of the same run name
that holds a checkpoint; eval scripts find their checkpoint the same way.

    run_dir, resume_from = run.resolve_run_dir(args, "dmcp", name="retrain")
    ckpt = run.find_checkpoint(args, "dmcp", name="retrain", hint="make dmcp-train")
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from shared import dist
from shared.checkpoint import latest_checkpoint
from shared.config import ConfigError, config_name, default_output_dir

__all__ = ["run_name", "run_root", "resolve_run_dir", "newest_run_checkpoint", "newest_run_dir",
           "find_checkpoint"]


def run_name(args, name: str | None = None) -> str:
    """`<config stem>` or `<config stem>-<name>` (`default` without a config)."""
    base = config_name(args)
    return f"{base}-{name}" if name else base


def run_root(paper: str, run: str, output_dir=None) -> Path:
    """`<output-dir>/<paper>/<run>`: the folder holding one timestamped folder per run."""
    return Path(output_dir if output_dir is not None else default_output_dir()) / paper / run


def newest_run_dir(paper: str, run: str, output_dir=None, required: bool = False,
                   hint: str = "") -> Path | None:
    """The newest `<timestamp>` folder of `<output-dir>/<paper>/<run>/` (checkpoint or not)."""
    base = run_root(paper, run, output_dir)
    runs = sorted((p for p in base.glob("*") if p.is_dir()), reverse=True) if base.is_dir() else []
    if runs:
        return runs[0]
    if required:
        raise FileNotFoundError(f"no run under {base}{': ' + hint if hint else ''}")
    return None


def newest_run_checkpoint(paper: str, config: str, required: bool = True, *, output_dir=None,
                          name: str | None = "checkpoint_last.pt", hint: str = "") -> Path | None:
    """The checkpoint of the newest run folder of `<output-dir>/<paper>/<config>/` that has one.

    `config` is a run name (`run_name(args, sub)`). `name` is the file to look for; `name=None`
    takes each run's latest checkpoint (`checkpoint_last.pt`, else the highest-numbered one).
    Missing: a FileNotFoundError naming the folder (and `hint`, e.g. "train first: make x-train")
    when `required`, else None.
    """
    base = run_root(paper, config, output_dir)
    runs = sorted((p for p in base.glob("*") if p.is_dir()), reverse=True) if base.is_dir() else []
    for r in runs:
        ckpt = latest_checkpoint(r) if name is None else (r / name if (r / name).is_file() else None)
        if ckpt is not None:
            return ckpt
    if required:
        what = name or "checkpoint"
        raise FileNotFoundError(f"no {what} under {base}{': ' + hint if hint else ''}")
    return None


def find_checkpoint(args, paper: str, name: str | None = None, *, hint: str = "",
                    file: str = "checkpoint_last.pt") -> Path:
    """An eval script's checkpoint: `--checkpoint` when given (it must exist), else `file` of the
    newest run of `run_name(args, name)`."""
    given = getattr(args, "checkpoint", "") or ""
    if given:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {given}: no such file")
        return path
    hint = hint or f"train first (make {paper}-train) or pass --checkpoint"
    return newest_run_checkpoint(paper, run_name(args, name), output_dir=getattr(args, "output_dir", None),
                                 name=file, hint=hint)


def resolve_run_dir(args, paper: str, name: str | None = None) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from or None), identical on every rank.

    The run name is `run_name(args, name)`. `--resume auto`: the newest run folder of that name
    holding a checkpoint (a fresh folder when there is none); `--resume PATH`: continue in that
    checkpoint's folder; otherwise a fresh `<timestamp>` folder. Decided on rank 0, broadcast.
    """
    run = run_name(args, name)
    resume = getattr(args, "resume", "") or ""
    base = run_root(paper, run, args.output_dir)
    choice = None
    if dist.is_main():
        run_dir, ckpt = None, None
        if resume == "auto":
            ckpt = newest_run_checkpoint(paper, run, required=False, output_dir=args.output_dir, name=None)
            run_dir = ckpt.parent if ckpt is not None else None
        elif resume:
            ckpt = Path(resume)
            if not ckpt.is_file():
                raise ConfigError(f"--resume {resume}: no such checkpoint file")
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
