"""The options train.py and eval.py share (so every config key is an option of both) and the
builders of data, model and loss from them."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cdgcnet.augment import SegDataset
from cdgcnet.data import DATASETS, build_source
from cdgcnet.engine import MODES
from cdgcnet.graph import SIMILARITIES
from cdgcnet.loss import SegCriterion
from cdgcnet.model import MASK_MODES, CDGCNet
from cdgcnet.toy import DEFAULT_OUT as TOY_ROOT
from cdgcnet.toy import make_toy_dataset
from shared import config, dist

__all__ = ["add_args", "ARMS", "build_data", "build_model", "build_criterion", "majority_class"]

HERE = Path(__file__).resolve().parent
TOY_CONFIG = HERE / "configs" / "toy.yaml"
ARMS = {"cdgc": True, "plain": False}  # --compare arms: the value of --cdgc
# what a checkpoint's network is made of (eval.py rebuilds it from these) ...
MODEL_KEYS = ("backbone", "tiny_width", "cdgc", "dim", "head_dim", "aux_dim", "graph_layers", "knn", "embed_dim",
              "max_nodes", "mask", "dropout", "similarity")
# ... and what else a resumed run must share with the run it continues
RESUME_KEYS = MODEL_KEYS + ("dataset", "train_split", "crop_size", "scale_range", "batch_size", "lr", "momentum",
                            "weight_decay", "iters", "poly_power", "ohem", "ohem_thresh", "ohem_min_kept")


def add_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="cityscapes", choices=DATASETS, help="benchmark layout under --data-root")
    g.add_argument("--data-root", default="", help="dataset root; empty: the toy Cityscapes tree (written on first use)")
    g.add_argument("--label-type", default="labelIds", choices=["labelIds", "trainIds"],
                   help="Cityscapes labels read: *_gtFine_labelIds.png or *_gtFine_labelTrainIds.png")
    g.add_argument("--train-split", default="train", help="training split(s), '+'-joined (e.g. train+val)")
    g.add_argument("--val-split", default="val", help="evaluation split")
    g.add_argument("--crop-size", type=int, nargs=2, default=[769, 769], metavar=("H", "W"),
                   help="training crop; also the sliding-window size")
    g.add_argument("--scale-range", type=float, nargs=2, default=[0.5, 2.0], help="random rescaling range")
    g.add_argument("--flip-aug", action=argparse.BooleanOptionalAction, default=True, help="random horizontal flip")

    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="resnet101", choices=["resnet101", "resnet50", "tiny"], help="dilated backbone (OS 8)")
    g.add_argument("--pretrained", default="", help="torchvision weight name (IMAGENET1K_V1) or a local file; '' = none")
    g.add_argument("--tiny-width", type=int, default=32, help="base width of the tiny backbone")
    g.add_argument("--cdgc", action=argparse.BooleanOptionalAction, default=True, help="the CDGC module (--no-cdgc: baseline)")
    g.add_argument("--compare", nargs="*", default=[], choices=sorted(ARMS),
                   help="train one run per arm (run names <config>-<arm>): cdgc, plain (= --no-cdgc)")
    g.add_argument("--dim", type=int, default=256, help="node feature dimension D")
    g.add_argument("--head-dim", type=int, default=512, help="channels of the coarse head")
    g.add_argument("--aux-dim", type=int, default=256, help="channels of the layer3 auxiliary head")
    g.add_argument("--graph-layers", type=int, default=2, help="dynamic graph convolution layers")
    g.add_argument("--knn", type=int, default=8, help="K: same-class neighbours of each node")
    g.add_argument("--embed-dim", type=int, default=128, help="similarity embedding size (0: raw features)")
    g.add_argument("--similarity", default="dot", choices=SIMILARITIES,
                   help="Eq. A: inner product / sqrt(E) (dot), or of unit vectors times a learned scale (cosine)")
    g.add_argument("--max-nodes", type=int, default=4096, help="neighbour pool per class and image (0: no cap)")
    g.add_argument("--mask", default="hard", choices=MASK_MODES, help="class masks from argmax P, soft P, or GT")
    g.add_argument("--dropout", type=float, default=0.1, help="dropout before the classifiers")

    g = p.add_argument_group("loss")
    g.add_argument("--ohem", action=argparse.BooleanOptionalAction, default=True, help="OHEM CE (CCNet) or plain CE")
    g.add_argument("--ohem-thresh", type=float, default=0.7, help="keep pixels with p_gt <= this")
    g.add_argument("--ohem-min-kept", type=int, default=100_000, help="keep at least this many pixels per process batch")
    g.add_argument("--coarse-weight", type=float, default=1.0, help="weight of the coarse prediction's loss")
    g.add_argument("--aux-weight", type=float, default=0.4, help="weight of the layer3 auxiliary loss")

    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=8, help="global batch (split over processes)")
    g.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (all parameters, as CCNet)")
    g.add_argument("--iters", type=int, default=60_000, help="training iterations")
    g.add_argument("--poly-power", type=float, default=0.9, help="lr = base * (1 - it / iters) ** power")
    g.add_argument("--clip-grad", type=float, default=0.0, help="clip the gradient norm (0: off)")
    g.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True, help="SyncBatchNorm under DDP on CUDA")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--log-period", type=int, default=20, help="iterations between metrics.jsonl records")
    g.add_argument("--checkpoint-period", type=int, default=2000, help="iterations between checkpoints")
    g.add_argument("--eval-period", type=int, default=0, help="iterations between validations (0: at the end only)")

    g = p.add_argument_group("inference")
    g.add_argument("--eval-mode", "--mode", dest="eval_mode", default="whole", choices=MODES, help="inference mode")
    g.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], help="ms_flip scales")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="ms_flip: add flipped images")
    g.add_argument("--eval-stride", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="sliding-window stride (default 2/3 of the crop)")
    g.add_argument("--print-freq", type=int, default=50, help="progress refresh (iterations)")
    return p


def data_root(args) -> Path:
    """--data-root, or the toy tree (written once, on rank 0 first)."""
    if args.data_root:
        root = Path(args.data_root)
        if not root.is_dir():
            raise FileNotFoundError(f"--data-root {root}: no such folder")
        return root
    if args.dataset != "cityscapes":
        raise ValueError(f"the toy data is a Cityscapes tree; --dataset {args.dataset} needs --data-root")
    if dist.is_main():
        make_toy_dataset(TOY_ROOT)
    dist.barrier()
    return TOY_ROOT


def build_source_only(args):
    return build_source(args.dataset, data_root(args), args.label_type)


def build_data(args, train: bool = True) -> dict:
    """{"source", "train" (SegDataset, augmenting) when `train`, "val" (SegDataset, whole images)}."""
    source = build_source_only(args)
    out = {"source": source}
    if train:
        out["train"] = SegDataset(source, source.records(args.train_split), True, args.crop_size,
                                  args.scale_range, args.flip_aug, args.seed)
    if args.val_split:
        out["val"] = SegDataset(source, source.records(args.val_split), False)
    return out


def build_model(args, num_classes: int) -> CDGCNet:
    return CDGCNet(num_classes, backbone=args.backbone, pretrained=args.pretrained, dim=args.dim,
                   head_dim=args.head_dim, aux_dim=args.aux_dim, cdgc=args.cdgc, layers=args.graph_layers,
                   knn=args.knn, embed_dim=args.embed_dim, max_nodes=args.max_nodes, mask=args.mask,
                   dropout=args.dropout, tiny_width=args.tiny_width, similarity=args.similarity)


def build_criterion(args) -> SegCriterion:
    return SegCriterion(args.ohem, args.ohem_thresh, args.ohem_min_kept, args.coarse_weight, args.aux_weight)


def majority_class(dataset: SegDataset, max_images: int = 500) -> int:
    """The most frequent train id over (up to `max_images` evenly spaced) training labels, counted
    on all ranks' shares: the trivial baseline predicts it everywhere."""
    n = len(dataset)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_images)).round().astype(int))
    hist = np.zeros(256, dtype=np.int64)
    for i in idx[dist.rank()::dist.world_size()]:
        hist += np.bincount(dataset.source.read_label(dataset.records[i].label).ravel(), minlength=256)
    total = sum(dist.all_gather_object(hist))
    return int(np.argmax(total[: dataset.source.num_classes]))


def check_args(args) -> None:
    if args.iters < 1:
        raise ValueError(f"--iters {args.iters}: must be positive")
    if not args.val_split:
        raise ValueError("--val-split is empty: training ends with an evaluation on it")
    if min(args.crop_size) < 8:
        raise ValueError(f"--crop-size {args.crop_size}: too small for output stride 8")
    if args.eval_mode == "ms_flip" and not args.scales:
        raise ValueError("--mode ms_flip needs --scales")
    if any(s <= 0 for s in args.scales):
        raise ValueError(f"--scales {args.scales}: must be positive")
    if args.lr <= 0:
        raise ValueError(f"--lr {args.lr}: must be positive")
    if len(set(args.compare)) != len(args.compare):
        raise ValueError(f"--compare {args.compare}: an arm is listed twice")
    if args.resume not in ("", "auto") and len(args.compare) > 1:
        raise ValueError("--resume PATH continues one run: give a single --compare arm (or --resume auto)")


def check_resume(saved: dict | None, args, path) -> None:
    """A resumed run must be the run it continues: the settings in RESUME_KEYS must match the
    checkpoint's (``--resume auto`` after a config change would otherwise mix two recipes)."""
    if not saved:
        return
    now = config.to_plain(vars(args))
    diff = [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in RESUME_KEYS if k in saved and saved[k] != now.get(k)]
    if diff:
        raise config.ConfigError(f"{path}: was trained with other settings ({'; '.join(diff)}); "
                                 "start a fresh run (drop --resume) or restore them")


def to_device(batch, device):
    images, labels, _ = batch
    return images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def epoch_batches(sampler, epoch: int, seed: int, per_process: int, start: int = 0) -> list[list]:
    """This rank's batches of `epoch` as ``(index, epoch)`` keys, from batch `start` on.

    The order is a function of (seed, epoch) in a single process too (DistributedSampler already
    is), so a resumed run continues mid-epoch with exactly the batches it would have seen."""
    dist.set_epoch(sampler, epoch)
    if isinstance(sampler, torch.utils.data.RandomSampler):
        sampler.generator = torch.Generator().manual_seed(seed + epoch)
    order = list(sampler)
    n = len(order) // per_process
    return [[(i, epoch) for i in order[b * per_process:(b + 1) * per_process]] for b in range(start, n)]
