"""Readers of the three benchmarks' on-disk layouts: records (image, label, prediction name) and labels.

Each dataset class lists the records of a split (``"train"``, ``"val"``, or several joined by ``+``,
e.g. ``"train+val"``), reads a label file into train ids (``uint8``, 255 = ignore) and converts
between train ids and the dataset's native ids (what its label files and the official evaluation
expect of a prediction). Every error names the file and the problem.

* :class:`Cityscapes` -- ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` with
  ``gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`` (or ``_labelTrainIds.png``).
  Images and labels are paired by the common stem, never by splitting the city name (cities may
  contain ``_`` and ``-``). The test split has no usable labels: predictions only.
* :class:`VOC` -- ``VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,SegmentationClassAug}`` and
  ``ImageSets/Segmentation/{train,val,aug}.txt``; the raw SBD release
  ``benchmark_RELEASE/dataset/{img,cls,train.txt,val.txt}`` (``GTcls.Segmentation`` in the ``.mat``)
  stands in for ``SegmentationClassAug`` and, without ``aug.txt``, the aug split is built as DeepLab
  did: (SBD train + SBD val + VOC train) - VOC val.
* :class:`COCOStuff` -- 10k: ``images/<name>.jpg``, ``annotations/<name>.mat`` (key ``S``, 1-based
  COCO ids, 0 unlabeled), ``imageLists/{train,test}.txt``; 164k: ``images/{train2017,val2017}/*.jpg``,
  ``annotations/{train2017,val2017}/*.png`` (0-based ids, 255 unlabeled). Both map to 171 classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cdgcnet import labels as L

__all__ = ["Record", "Cityscapes", "VOC", "COCOStuff", "build_source", "read_image", "read_png", "DATASETS"]

DATASETS = ("cityscapes", "voc", "cocostuff10k", "cocostuff164k")


@dataclass(frozen=True)
class Record:
    image: str
    label: str | None  # None: no ground truth (Cityscapes test)
    name: str          # prediction name: Cityscapes <city>_<seq>_<frame>, VOC id, COCO image name


def read_image(path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file not found") from None
    except OSError as e:
        raise OSError(f"{path}: not a readable image ({e})") from None


def read_png(path) -> np.ndarray:
    """A single-channel PNG (label or prediction) as an integer array [H, W]."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"{path}: a label map must be a single-channel PNG, got mode {im.mode}")
            return np.array(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: label file not found") from None
    except OSError as e:
        raise OSError(f"{path}: not a readable PNG ({e})") from None


def _check_values(arr: np.ndarray, ok: np.ndarray, path, what: str) -> None:
    """`ok` is a boolean table over 0..max; raise naming the file and the first bad values."""
    vals = np.unique(arr)
    bad = [int(v) for v in vals if v < 0 or v >= len(ok) or not ok[int(v)]]
    if bad:
        raise ValueError(f"{path}: values {bad[:8]} are not {what}")


def _split_list(split: str) -> list[str]:
    parts = [s for s in split.split("+") if s]
    if not parts:
        raise ValueError(f"empty split {split!r}")
    return parts


class Cityscapes:
    """Cityscapes fine annotations, 19 evaluated classes (trainIds), evaluated as cityscapesScripts does."""

    name = "cityscapes"
    num_classes = 19
    classes = L.CITYSCAPES_CLASSES
    categories = L.CITYSCAPES_CATEGORIES
    label_formats = ("labelIds", "trainIds")
    pred_suffix = "_leftImg8bit.png"  # <city>_<seq>_<frame>_leftImg8bit.png, as the test server takes them

    def __init__(self, root, label_type: str = "labelIds"):
        if label_type not in self.label_formats:
            raise ValueError(f"--label-type {label_type!r}: use labelIds or trainIds")
        self.root = Path(root)
        self.label_type = label_type

    def records(self, split: str) -> list[Record]:
        recs = []
        for part in _split_list(split):
            recs += self._records(part)
        return recs

    def _records(self, split: str) -> list[Record]:
        img_dir = self.root / "leftImg8bit" / split
        if not img_dir.is_dir():
            raise FileNotFoundError(f"{img_dir}: no such folder (Cityscapes layout: leftImg8bit/{split}/<city>/"
                                    "<city>_<seq>_<frame>_leftImg8bit.png)")
        suffix = "_gtFine_labelIds.png" if self.label_type == "labelIds" else "_gtFine_labelTrainIds.png"
        out = []
        for city in sorted(p for p in img_dir.iterdir() if p.is_dir()):
            for img in sorted(city.glob("*_leftImg8bit.png")):
                stem = img.name[: -len("_leftImg8bit.png")]
                label = None
                if split != "test":
                    label = self.root / "gtFine" / split / city.name / f"{stem}{suffix}"
                    if not label.is_file():
                        raise FileNotFoundError(f"{img}: its label {label} is missing")
                out.append(Record(str(img), None if label is None else str(label), stem))
        if not out:
            raise FileNotFoundError(f"{img_dir}: no <city>/*_leftImg8bit.png images")
        return out

    def read_label(self, path) -> np.ndarray:
        return self.from_native(read_png(path), path, "labelIds" if self.label_type == "labelIds" else "trainIds")

    def from_native(self, arr: np.ndarray, path, fmt: str = "labelIds") -> np.ndarray:
        """labelIds (0..33, void ones -> 255) or trainIds (0..18, 255) -> train ids."""
        if fmt == "labelIds":
            ok = np.ones(L.NUM_CITYSCAPES_LABEL_IDS, dtype=bool)
            _check_values(arr, ok, path, "Cityscapes labelIds (0..33)")
            return L.LABEL_TO_TRAIN[arr]
        if fmt == "trainIds":
            ok = np.zeros(256, dtype=bool)
            ok[: self.num_classes] = ok[L.IGNORE] = True
            _check_values(arr, ok, path, "Cityscapes trainIds (0..18 or 255)")
            return arr.astype(np.uint8)
        raise ValueError(f"unknown label format {fmt!r}: use labelIds or trainIds")

    def to_native(self, train_ids: np.ndarray) -> np.ndarray:
        """Train ids -> labelIds, what cityscapesScripts and the test server read."""
        return L.TRAIN_TO_LABEL[train_ids]


class VOC:
    """PASCAL VOC 2012 (+ SBD augmentation), 21 classes, 255 = object boundaries (ignored)."""

    name = "voc"
    num_classes = 21
    classes = L.VOC_CLASSES
    categories = None
    label_formats = ("labelIds", "trainIds")  # identical for VOC
    pred_suffix = ".png"

    def __init__(self, root):
        self.root = Path(root)
        self.voc = self.root / "VOCdevkit" / "VOC2012"
        self.sbd = self.root / "benchmark_RELEASE" / "dataset"

    def _read_list(self, path: Path) -> list[str]:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: split list not found")
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]

    def _ids(self, split: str) -> list[str]:
        lst = self.voc / "ImageSets" / "Segmentation" / f"{split}.txt"
        if lst.is_file() or split != "aug":
            return self._read_list(lst)
        if not self.sbd.is_dir():
            raise FileNotFoundError(f"{lst}: not found, and no SBD release at {self.sbd} to build it from")
        val = set(self._ids("val"))
        ids = self._read_list(self.sbd / "train.txt") + self._read_list(self.sbd / "val.txt") + self._ids("train")
        return sorted({i for i in ids if i not in val})

    def records(self, split: str) -> list[Record]:
        out, seen = [], set()
        for part in _split_list(split):
            for i in self._ids(part):
                if i in seen:
                    continue
                seen.add(i)
                out.append(Record(str(self._image(i)), str(self._label(i, part)), i))
        if not out:
            raise FileNotFoundError(f"{self.voc}: split {split!r} lists no image")
        return out

    def _image(self, i: str) -> Path:
        for p in (self.voc / "JPEGImages" / f"{i}.jpg", self.sbd / "img" / f"{i}.jpg"):
            if p.is_file():
                return p
        raise FileNotFoundError(f"{self.voc / 'JPEGImages' / (i + '.jpg')}: image of {i!r} not found")

    def _label(self, i: str, split: str) -> Path:
        official = self.voc / "SegmentationClass" / f"{i}.png"
        aug = self.voc / "SegmentationClassAug" / f"{i}.png"
        order = (aug, official) if split == "aug" else (official, aug)
        for p in (*order, self.sbd / "cls" / f"{i}.mat"):
            if p.is_file():
                return p
        raise FileNotFoundError(f"{official}: label of {i!r} not found (nor in SegmentationClassAug or SBD cls/)")

    def read_label(self, path) -> np.ndarray:
        if str(path).endswith(".mat"):
            from scipy.io import loadmat
            try:
                arr = np.asarray(loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"].Segmentation)
            except (KeyError, AttributeError, ValueError, OSError) as e:
                raise ValueError(f"{path}: not an SBD label (GTcls.Segmentation): {e}") from None
        else:
            arr = read_png(path)
        return self.from_native(arr, path)

    def from_native(self, arr: np.ndarray, path, fmt: str = "labelIds") -> np.ndarray:
        ok = np.zeros(256, dtype=bool)
        ok[: self.num_classes] = ok[L.IGNORE] = True
        _check_values(arr, ok, path, "VOC class ids (0..20 or 255)")
        return arr.astype(np.uint8)

    def to_native(self, train_ids: np.ndarray) -> np.ndarray:
        return train_ids.astype(np.uint8)


class COCOStuff:
    """COCO-Stuff 10k (``.mat``, 1-based ids) or 164k (PNG, 0-based ids): 171 classes."""

    num_classes = 171
    classes = L.COCOSTUFF_CLASSES
    categories = None
    label_formats = ("labelIds", "trainIds")
    pred_suffix = ".png"
    ALIASES = {"train": "train2017", "val": "val2017"}

    def __init__(self, root, version: str):
        if version not in ("10k", "164k"):
            raise ValueError(f"COCO-Stuff version {version!r}: use 10k or 164k")
        self.root = Path(root)
        self.version = version
        self.name = f"cocostuff{version}"

    def records(self, split: str) -> list[Record]:
        out = []
        for part in _split_list(split):
            out += self._records10k(part) if self.version == "10k" else self._records164k(part)
        return out

    def _records10k(self, split: str) -> list[Record]:
        lst = self.root / "imageLists" / f"{split}.txt"
        if not lst.is_file():
            raise FileNotFoundError(f"{lst}: split list not found (COCO-Stuff-10k layout)")
        out = []
        for name in (x.strip() for x in lst.read_text().splitlines()):
            if name:
                img, ann = self.root / "images" / f"{name}.jpg", self.root / "annotations" / f"{name}.mat"
                if not ann.is_file():
                    raise FileNotFoundError(f"{img}: its label {ann} is missing")
                out.append(Record(str(img), str(ann), name))
        return out

    def _records164k(self, split: str) -> list[Record]:
        split = self.ALIASES.get(split, split)
        img_dir = self.root / "images" / split
        if not img_dir.is_dir():
            raise FileNotFoundError(f"{img_dir}: no such folder (COCO-Stuff-164k layout: images/{split}/*.jpg)")
        out = []
        for img in sorted(img_dir.glob("*.jpg")):
            ann = self.root / "annotations" / split / f"{img.stem}.png"
            if not ann.is_file():
                raise FileNotFoundError(f"{img}: its label {ann} is missing")
            out.append(Record(str(img), str(ann), img.stem))
        if not out:
            raise FileNotFoundError(f"{img_dir}: no *.jpg images")
        return out

    def read_label(self, path) -> np.ndarray:
        if str(path).endswith(".mat"):
            from scipy.io import loadmat
            try:
                arr = np.asarray(loadmat(path)["S"])
            except (KeyError, ValueError, OSError) as e:
                raise ValueError(f"{path}: not a COCO-Stuff-10k annotation (key 'S'): {e}") from None
        else:
            arr = read_png(path)
        return self.from_native(arr, path)

    def from_native(self, arr: np.ndarray, path, fmt: str = "labelIds") -> np.ndarray:
        if fmt == "trainIds":
            ok = np.zeros(256, dtype=bool)
            ok[: self.num_classes] = ok[L.IGNORE] = True
            _check_values(arr, ok, path, "COCO-Stuff train ids (0..170 or 255)")
            return arr.astype(np.uint8)
        arr = arr.astype(np.int64)
        if self.version == "10k":
            _check_values(arr, np.ones(183, dtype=bool), path, "COCO-Stuff-10k ids (0 unlabeled, 1..182)")
            return L.COCO_TO_TRAIN[arr]
        ok = np.zeros(256, dtype=bool)
        ok[:182] = ok[L.IGNORE] = True
        _check_values(arr, ok, path, "COCO-Stuff-164k ids (0..181, 255 unlabeled)")
        return L.COCO_TO_TRAIN[np.where(arr == L.IGNORE, 0, arr + 1)]

    def to_native(self, train_ids: np.ndarray) -> np.ndarray:
        coco = L.TRAIN_TO_COCO[train_ids]
        if self.version == "10k":
            return np.where(train_ids == L.IGNORE, 0, coco).astype(np.uint8)
        return np.where(train_ids == L.IGNORE, L.IGNORE, coco - 1).astype(np.uint8)


def build_source(dataset: str, root, label_type: str = "labelIds"):
    if dataset == "cityscapes":
        return Cityscapes(root, label_type)
    if dataset == "voc":
        return VOC(root)
    if dataset in ("cocostuff10k", "cocostuff164k"):
        return COCOStuff(root, dataset[len("cocostuff"):])
    raise ValueError(f"--dataset {dataset!r}: use one of {', '.join(DATASETS)}")
