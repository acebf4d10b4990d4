"""Open Images on disk: releases and their file names, training records with multi-label objects,
concurrent rates, class statistics, and the image datasets.

Layout under ``--data-root`` (the official names; any file can be given explicitly instead)::

    class-descriptions-boxable.csv  bbox_labels_600_hierarchy.json              (v4, v5, v6)
    {train,validation,test}-annotations-bbox.csv                                (v6 train: oidv6-train-...)
    {train,validation,test}-annotations-human-imagelabels-boxable.csv
    challenge-2019-classes-description-500.csv  challenge-2019-label500-hierarchy.json   (challenge2019)
    challenge-2019-{train,validation}-detection-bbox.csv
    challenge-2019-{train,validation}-detection-human-imagelabels.csv
    train/<ImageID>.jpg  validation/<ImageID>.jpg  test/<ImageID>.jpg

Multi-label objects (Section 3 of the paper): within an image, boxes whose IoU is at least
``--concurrent-iou`` (0.95) are one object carrying the union of their labels (connected components
of the "IoU >= t" graph; the object's box and group-of flag are its first box's); with
``--train-labels expanded`` every label brings its ancestors. The concurrent rate
``r_ij = #objects labelled i and j / #objects labelled i`` is counted over these objects.

Invalid training boxes (XMin >= XMax or YMin >= YMax) are skipped and counted; every other problem
(unknown label, missing column, coordinate outside [0, 1], missing image) stops before training.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from openimages_det.annotations import read_boxes, read_classes, read_image_labels
from openimages_det.hierarchy import load_hierarchy

__all__ = ["RELEASES", "resolve_files", "TrainRecords", "build_records", "concurrent_rates", "ancestor_matrix",
           "class_statistics", "list_images", "check_images", "OpenImagesTrain", "OpenImagesImages", "collate",
           "DataError", "load_split_tables", "load_classes"]
log = logging.getLogger("openimages_det")

# release -> {file kind: [candidate names]}; "{split}" is train / validation / test
RELEASES = {
    **{v: {"classes": ["class-descriptions-boxable.csv", f"oidv{v[1]}-class-descriptions-boxable.csv"],
           "hierarchy": ["bbox_labels_600_hierarchy.json"],
           "boxes": ["{split}-annotations-bbox.csv", f"oidv{v[1]}-" + "{split}-annotations-bbox.csv"],
           "labels": ["{split}-annotations-human-imagelabels-boxable.csv",
                      f"oidv{v[1]}-" + "{split}-annotations-human-imagelabels-boxable.csv"]}
       for v in ("v4", "v5", "v6")},
    "challenge2019": {"classes": ["challenge-2019-classes-description-500.csv"],
                      "hierarchy": ["challenge-2019-label500-hierarchy.json"],
                      "boxes": ["challenge-2019-{split}-detection-bbox.csv"],
                      "labels": ["challenge-2019-{split}-detection-human-imagelabels.csv"]},
}
SPLIT_DIRS = {"train": "train", "validation": "validation", "test": "test"}


class DataError(ValueError):
    """A dataset that cannot be used, naming the file and the problem."""


def resolve_files(args, split: str) -> dict:
    """{'classes', 'hierarchy', 'boxes', 'labels', 'images'} paths for a split: explicit flags first,
    else the release's official names under --data-root (the first candidate that exists)."""
    root = Path(args.data_root)
    names = RELEASES[args.release]
    explicit = {"classes": args.classes_file, "hierarchy": args.hierarchy_file,
                "boxes": getattr(args, f"{_flag(split)}_boxes", ""), "labels": getattr(args, f"{_flag(split)}_image_labels", "")}
    out = {}
    for kind, given in explicit.items():
        if given:
            out[kind] = Path(given)
            continue
        cands = [root / n.format(split=split) for n in names[kind]]
        found = next((c for c in cands if c.is_file()), None)
        out[kind] = found if found is not None else cands[0]
    img_dir = getattr(args, f"{_flag(split)}_images", "") or ""
    out["images"] = Path(img_dir) if img_dir else root / SPLIT_DIRS[split]
    return out


def _flag(split: str) -> str:
    return {"train": "train", "validation": "val", "test": "test"}[split]


# ------------------------------------------------------------------------------ records
@dataclass
class TrainRecords:
    """Compact training annotations: images, their objects (CSR) and each object's label set (CSR).

    Class indices are 1..C (0 is the background, torchvision's convention). ``boxes`` are normalised
    (x1, y1, x2, y2); ``primary`` is the label of the object's first box; ``labels`` the label set used
    in training (expanded or not); ``annotated`` the label set as annotated (never expanded)."""
    image_ids: np.ndarray
    obj_ptr: np.ndarray
    boxes: np.ndarray
    group: np.ndarray
    primary: np.ndarray
    lab_ptr: np.ndarray
    labels: np.ndarray
    ann_ptr: np.ndarray
    annotated: np.ndarray
    num_classes: int
    skipped_boxes: int = 0

    def __len__(self) -> int:
        return len(self.image_ids)

    def objects(self, i: int):
        """(boxes [K, 4], group [K], primary [K], label sets: list of K int arrays) of image i."""
        a, b = self.obj_ptr[i], self.obj_ptr[i + 1]
        sets = [self.labels[self.lab_ptr[k]:self.lab_ptr[k + 1]] for k in range(a, b)]
        return self.boxes[a:b], self.group[a:b], self.primary[a:b], sets

    def incidence(self, annotated: bool = False) -> csr_matrix:
        """Object x class incidence [n_objects, C + 1] (0/1)."""
        ptr, lab = (self.ann_ptr, self.annotated) if annotated else (self.lab_ptr, self.labels)
        n = len(ptr) - 1
        rows = np.repeat(np.arange(n), np.diff(ptr))
        return csr_matrix((np.ones(len(lab), np.float64), (rows, lab)), shape=(n, self.num_classes + 1))

    def class_images(self, annotated: bool = False) -> csr_matrix:
        """Image x class incidence [n_images, C + 1] (0/1) of the label sets."""
        n_obj = int(self.obj_ptr[-1])
        obj_img = np.repeat(np.arange(len(self)), np.diff(self.obj_ptr))
        to_img = csr_matrix((np.ones(n_obj), (obj_img, np.arange(n_obj))), shape=(len(self), n_obj))
        m = (to_img @ self.incidence(annotated)).tocsr()
        m.data[:] = 1.0
        return m


def _group_objects(img: np.ndarray, boxes: np.ndarray, iou_thr: float, max_pairs: int = 1 << 22) -> np.ndarray:
    """Object id per box: connected components of 'same image and IoU >= iou_thr' (boxes sorted by image)."""
    n = len(img)
    if n == 0 or iou_thr > 1:
        return np.arange(n)
    starts = np.flatnonzero(np.r_[True, img[1:] != img[:-1]])
    counts = np.diff(np.r_[starts, n])
    pairs_per_img = counts * (counts - 1) // 2
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    edges_a, edges_b = [], []
    cum = np.cumsum(pairs_per_img)
    lo = 0
    while lo < len(starts):  # chunks of images with at most max_pairs candidate pairs (at least one image)
        done = cum[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(cum, done + max_pairs, side="right")))
        st, ct = starts[lo:hi], counts[lo:hi]
        reps = np.repeat(ct, ct)                                    # for each box, its image's size
        box = np.repeat(st, ct) + (np.arange(ct.sum()) - np.repeat(np.cumsum(ct) - ct, ct))
        a = np.repeat(box, reps)
        b = np.repeat(np.repeat(st, ct), reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
        m = a < b
        a, b = a[m], b[m]
        x1 = np.maximum(boxes[a, 0], boxes[b, 0])
        y1 = np.maximum(boxes[a, 1], boxes[b, 1])
        x2 = np.minimum(boxes[a, 2], boxes[b, 2])
        y2 = np.minimum(boxes[a, 3], boxes[b, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = inter / (area[a] + area[b] - inter)
        keep = iou >= iou_thr
        edges_a.append(a[keep])
        edges_b.append(b[keep])
        lo = hi
    ea, eb = np.concatenate(edges_a), np.concatenate(edges_b)
    graph = coo_matrix((np.ones(len(ea)), (ea, eb)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    # relabel components in order of their first box, so object ids follow the file order
    first = np.full(comp.max() + 1, n)
    np.minimum.at(first, comp, np.arange(n))
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[comp]


def build_records(boxes_df, class_names: list, hierarchy=None, concurrent_iou: float = 0.95,
                  expand: bool = False) -> TrainRecords:
    """Training records from a boxes table (``annotations.read_boxes``): invalid boxes skipped and
    counted, multi-label objects formed, label sets expanded with ancestors when ``expand``."""
    cls_index = {c: i + 1 for i, c in enumerate(class_names)}
    x1, x2 = boxes_df["XMin"].to_numpy(np.float32), boxes_df["XMax"].to_numpy(np.float32)
    y1, y2 = boxes_df["YMin"].to_numpy(np.float32), boxes_df["YMax"].to_numpy(np.float32)
    valid = (x1 < x2) & (y1 < y2)
    skipped = int((~valid).sum())
    codes, names = pd.factorize(boxes_df["ImageID"], sort=True)          # no per-row strings
    lab = boxes_df["LabelName"].map(cls_index).to_numpy()[valid].astype(np.int32)
    box = np.column_stack([x1, y1, x2, y2])[valid]
    grp = boxes_df["IsGroupOf"].to_numpy()[valid] == 1
    order = np.argsort(codes[valid], kind="stable")                      # images sorted, file order within
    used, img_code = np.unique(codes[valid][order], return_inverse=True)
    img_uniq = np.asarray(names, dtype=object)[used]
    lab, box, grp = lab[order], box[order], grp[order]
    obj = _group_objects(img_code, box, concurrent_iou)
    n_obj = int(obj.max()) + 1 if len(obj) else 0
    first = np.full(n_obj, len(obj))
    np.minimum.at(first, obj, np.arange(len(obj)))
    # annotated label sets: unique (object, label) pairs in order
    pairs = np.unique(obj.astype(np.int64) * (len(class_names) + 1) + lab)
    ann_obj, ann_lab = pairs // (len(class_names) + 1), (pairs % (len(class_names) + 1)).astype(np.int32)
    ann_ptr = np.searchsorted(ann_obj, np.arange(n_obj + 1))
    if expand:  # every (object, label) pair brings the label's ancestors: incidence @ ancestor matrix
        if hierarchy is None:
            raise DataError("--train-labels expanded needs the hierarchy file")
        n_cls = len(class_names) + 1
        inc = csr_matrix((np.ones(len(ann_lab)), (ann_obj, ann_lab)), shape=(n_obj, n_cls))
        exp = (inc @ ancestor_matrix(class_names, hierarchy)).tocsr()
        exp.sort_indices()
        lab_ptr, exp_lab = exp.indptr.astype(np.int64), exp.indices.astype(np.int32)
    else:
        exp_lab, lab_ptr = ann_lab, ann_ptr
    obj_img = img_code[first]
    obj_ptr = np.searchsorted(obj_img, np.arange(len(img_uniq) + 1))
    return TrainRecords(image_ids=img_uniq, obj_ptr=obj_ptr, boxes=box[first], group=grp[first],
                        primary=lab[first], lab_ptr=lab_ptr, labels=exp_lab, ann_ptr=ann_ptr, annotated=ann_lab,
                        num_classes=len(class_names), skipped_boxes=skipped)


def concurrent_rates(records: TrainRecords) -> torch.Tensor:
    """r [C + 1, C + 1]: r_ij = #objects labelled i and j / #objects labelled i, over the training
    label sets (diagonal 1 for classes with objects; background row and column 0)."""
    m = records.incidence()
    co = (m.T @ m).toarray()
    n_i = np.diag(co).copy()
    r = np.divide(co, n_i[:, None], out=np.zeros_like(co), where=n_i[:, None] > 0)
    r[0, :] = 0
    r[:, 0] = 0
    return torch.from_numpy(r.astype(np.float32))


def ancestor_matrix(class_names: list, hierarchy) -> csr_matrix:
    """A [C + 1, C + 1]: A[c, a] = 1 when a is c or one of its ancestors (classes outside the hierarchy
    map to themselves only)."""
    index = {c: i + 1 for i, c in enumerate(class_names)}
    rows, cols = list(range(len(class_names) + 1)), list(range(len(class_names) + 1))
    if hierarchy is not None:
        h = load_hierarchy(hierarchy)
        for c in class_names:
            if c in h:
                for a in h.ancestors(c):
                    if a in index:
                        rows.append(index[c])
                        cols.append(index[a])
    n = len(class_names) + 1
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def class_statistics(records: TrainRecords, class_names: list, hierarchy=None) -> dict:
    """Per class (lists in class order): ``image_count`` = training images holding the class once the
    annotations are expanded along the hierarchy (what the metric counts as the class),
    ``multilabel_rate`` = share of its objects that carry more than one annotated label,
    ``object_count`` = its annotated objects."""
    ann = records.incidence(annotated=True)
    sizes = np.diff(records.ann_ptr)
    obj_count = np.asarray(ann.sum(0)).ravel()[1:]
    multi_count = np.asarray(ann.multiply((sizes > 1)[:, None]).sum(0)).ravel()[1:]
    img = records.class_images(annotated=True) @ ancestor_matrix(class_names, hierarchy)
    img_count = np.asarray((img > 0).sum(0)).ravel()[1:]
    rate = np.divide(multi_count, obj_count, out=np.zeros(len(class_names)), where=obj_count > 0)
    return {"image_count": img_count.astype(np.int64).tolist(), "multilabel_rate": rate.tolist(),
            "object_count": obj_count.astype(np.int64).tolist()}


def list_images(image_dir: Path) -> list:
    """ImageIDs of the ``<ImageID>.jpg`` files of a folder, sorted."""
    if not Path(image_dir).is_dir():
        raise DataError(f"{image_dir}: image folder not found")
    return sorted(e.name[:-4] for e in os.scandir(image_dir) if e.name.endswith(".jpg"))


def check_images(image_dir: Path, image_ids, what: str) -> None:
    """Every ``<image_dir>/<ImageID>.jpg`` must exist (one directory listing, not one stat per image)."""
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: image folder of the {what} split not found")
    present = set(list_images(image_dir))
    missing = [i for i in image_ids if i not in present]
    if missing:
        raise DataError(f"{image_dir}: {len(missing)} of {len(image_ids)} {what} images missing, "
                        f"e.g. {missing[:3]} (expected <ImageID>.jpg)")


# ------------------------------------------------------------------------------ datasets
def _load_image(path: Path) -> torch.Tensor:
    from PIL import Image
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


class OpenImagesTrain(torch.utils.data.Dataset):
    """Training images with targets: ``boxes`` (absolute xyxy), ``labels`` (the first box's class,
    which torchvision's matcher and sampler use), ``label_sets`` (bool [K, C + 1]: the object's label
    set, read by ``LabelSetRoIHeads``). Indexed by ``(image index, flip)`` from the training sampler, so
    the augmentation is a function of the sample stream, not of worker RNG. An unreadable image is
    replaced by the next one, with a warning naming it."""

    def __init__(self, records: TrainRecords, image_dir: Path):
        self.records = records
        self.image_dir = Path(image_dir)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key):
        idx, flip = key if isinstance(key, tuple) else (key, False)
        for attempt in range(10):
            i = (int(idx) + attempt) % len(self)
            path = self.image_dir / f"{self.records.image_ids[i]}.jpg"
            try:
                img = _load_image(path)
                break
            except OSError as e:
                log.warning("unreadable training image %s (%s): using the next image instead", path, e)
        else:
            raise DataError(f"{self.image_dir}: ten unreadable images in a row from index {idx}")
        boxes, group, primary, sets = self.records.objects(i)
        h, w = img.shape[-2:]
        b = torch.from_numpy(boxes.astype(np.float32)) * torch.tensor([w, h, w, h], dtype=torch.float32)
        if flip:
            img = img.flip(-1)
            b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
        label_sets = torch.zeros(len(sets), self.records.num_classes + 1, dtype=torch.bool)
        for k, s in enumerate(sets):
            label_sets[k, torch.from_numpy(s.astype(np.int64))] = True
        target = {"boxes": b, "labels": torch.from_numpy(primary.astype(np.int64)), "label_sets": label_sets,
                  "image_index": torch.tensor(i)}
        return img, target


class OpenImagesImages(torch.utils.data.Dataset):
    """Images of an evaluation split, in ImageID order: (image tensor, ImageID)."""

    def __init__(self, image_ids, image_dir: Path):
        self.image_ids = sorted(set(str(i) for i in image_ids))
        self.image_dir = Path(image_dir)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i):
        path = self.image_dir / f"{self.image_ids[i]}.jpg"
        try:
            return _load_image(path), self.image_ids[i]
        except OSError as e:
            raise DataError(f"{path}: unreadable image ({e})") from None


def collate(batch):
    return tuple(zip(*batch))


def load_split_tables(files: dict, class_names: list, with_labels: bool = True):
    """(boxes, image labels or None) of a split, checked against the class list."""
    boxes = read_boxes(files["boxes"], classes=class_names, float_dtype=np.float32)
    labels = read_image_labels(files["labels"], classes=class_names) if with_labels else None
    return boxes, labels


def load_classes(files: dict) -> list:
    """LabelNames in the release's class order."""
    return [c for c, _ in read_classes(files["classes"])]
