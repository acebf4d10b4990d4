"""Spoof probability per image: an image, a folder, or a list file -> JSON or CSV.

    python predict.py face.jpg --checkpoint runs/celeba_spoof/toy-CSG/<ts>/checkpoint_last.pt
    python predict.py /photos --checkpoint ckpt_iter.pth.tar --out preds.csv      # the released model
    python predict.py metas/intra_test/test_label.json --root /datasets/CelebA_Spoof --checkpoint ... --out preds.json

Inputs: image files; folders (searched recursively; ``*_depth.png`` / ``*_reflect.png`` maps are
skipped); list files: ``.txt`` (one path per line, anything after the path ignored) or a
CelebA-Spoof label ``.json`` (its keys), paths relative to ``--root``. Each image is cropped with its
``<image>_BB.txt`` when present (scaled and clamped as the official code does), otherwise the whole
image is used; the record says which. The score is softmax(C)[:, 1] (AENet_S: 1 - P(Live) of the
spoof-type head), computed in fp32 unless ``--amp`` (bf16 autocast on CUDA). Output: ``--out x.json``
/ ``x.csv``, or JSON on stdout. A released checkpoint that differs from the model is loaded as far
as it matches, the rest named on stderr (``--strict-load`` refuses it).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from celeba_spoof import bbox as bb
from celeba_spoof import eval as cs_eval
from celeba_spoof.data import IMAGE_EXTS, MAP_SUFFIXES, build_transform, load_crop
from celeba_spoof.model import AENet
from shared.device import autocast, resolve_device, use_amp


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("AENet prediction", add_help=add_help)
    p.add_argument("inputs", nargs="+", help="image files, folders, or list files (.txt / label .json)")
    p.add_argument("--checkpoint", required=True, help="our checkpoint_*.pt or the released ckpt_iter.pth.tar")
    p.add_argument("--root", default="", help="base of relative paths in list files (default: the current folder)")
    p.add_argument("--out", default="", help="output file, .json or .csv (default: JSON on stdout)")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch")
    p.add_argument("--negative-bbox", default="clamp", choices=["clamp", "whole"], help="boxes with negative values: official clamping or the whole image")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                   help="bf16 autocast on CUDA (default: fp32, the reference numbers)")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    cs_eval.add_strict_load_arg(p)
    return p


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS and not p.name.endswith(MAP_SUFFIXES)


def expand_inputs(inputs, root: str = "") -> list[Path]:
    """Image paths, in input order (folders sorted); a missing input is an error naming it."""
    base = Path(root) if root else Path.cwd()
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and _is_image(q))
        elif p.is_file() and p.suffix.lower() == ".json":
            try:
                keys = list(json.loads(p.read_text()))
            except (json.JSONDecodeError, TypeError) as e:
                raise ValueError(f"{p}: not a label JSON (path -> label): {e}") from None
            out += [base / k for k in keys]
        elif p.is_file() and p.suffix.lower() == ".txt" and not p.name.endswith("_BB.txt"):
            out += [base / line.split()[0] for line in p.read_text().splitlines() if line.strip()]
        elif p.is_file() and _is_image(p):
            out.append(p)
        elif p.exists():
            raise ValueError(f"{p}: not an image, folder, .txt or .json list")
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    missing = [str(p) for p in out if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed images do not exist, first: {missing[0]} (set --root?)")
    if not out:
        raise ValueError(f"no images found in {list(inputs)}")
    return out


class ImageList(Dataset):
    def __init__(self, paths, input_size: int, normalize: str, negative: str):
        self.paths = list(paths)
        self.transform = build_transform(input_size, False, normalize=normalize)
        self.negative = negative

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = self.paths[i]
        box = bb.read_box_file(bb.bbox_path(path))
        img, xyxy, status, _ = load_crop(path, box, self.negative)
        source = {"ok": "_BB.txt", "missing": "whole image (no _BB.txt)"}.get(status, f"whole image ({status} _BB.txt)")
        return self.transform(img), torch.tensor(xyxy), source


def _collate(batch):
    x, xyxy, src = zip(*batch)
    return torch.stack(x), torch.stack(xyxy), list(src)


def predict(model: AENet, paths, input_size: int, normalize: str = "none", device="cpu", batch_size: int = 32,
            negative: str = "clamp", workers: int = 0, amp: bool = False) -> list[dict]:
    """[{image, p_spoof, box, crop}] in the order of ``paths``; fp32 unless ``amp`` (CUDA only)."""
    device = torch.device(device)
    loader = DataLoader(ImageList(paths, input_size, normalize, negative), batch_size=batch_size,
                        num_workers=workers, collate_fn=_collate)
    model.eval().to(device)
    records, k = [], 0
    with torch.no_grad():
        for x, xyxy, src in loader:
            with autocast(device, amp):
                p = AENet.spoof_prob(model(x.to(device))).cpu().tolist()
            for j in range(len(p)):
                records.append({"image": str(paths[k]), "p_spoof": float(p[j]), "box": src[j],
                                "crop": [int(v) for v in xyxy[j]]})
                k += 1
    return records


def write(records: list[dict], out: str) -> None:
    if not out:
        json.dump(records, sys.stdout, indent=1)
        print()
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "p_spoof", "box", "x1", "y1", "x2", "y2"])
            for r in records:
                w.writerow([r["image"], f"{r['p_spoof']:.6f}", r["box"], *r["crop"]])
    elif path.suffix.lower() == ".json":
        path.write_text(json.dumps(records, indent=1))
    else:
        raise ValueError(f"--out {out}: use a .json or .csv file name")


def main(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out and Path(args.out).suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"--out {args.out}: use a .json or .csv file name")
    paths = expand_inputs(args.inputs, args.root)
    margs = cs_eval.get_args_parser().parse_args(["--strict-load"] if args.strict_load else [])
    model, variant, _ = cs_eval.load_model(Path(args.checkpoint), margs)
    device = resolve_device(args.device)
    records = predict(model, paths, margs.input_size, margs.normalize, device, args.batch_size, args.negative_bbox,
                      args.workers, amp=use_amp(args, device))
    write(records, args.out)
    if args.out:
        print(f"{len(records)} images scored with {variant} ({args.checkpoint}) -> {args.out}", file=sys.stderr)
    return records


if __name__ == "__main__":
    main(get_args_parser().parse_args())
