"""Torch datasets over a `data.Split`: a person image and its clothes input, the strong-baseline
transforms, and the raw-pixel baseline's inputs.

The clothes input of an item is its template (`clothes="template"`: training and queries), a
patch cut from the person image by a clothes box (`clothes="box"`: the gallery, boxes from the
clothes detector, from parsing, or the fixed torso crop), or nothing (`clothes="none"`).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import transforms as T

from cocas_reid.data import DataError, Split, image_path

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "person_transform", "clothes_transform", "ReidImages",
           "PixelImages", "open_rgb"]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def open_rgb(path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: unreadable image ({e})") from None


def person_transform(height: int, width: int, train: bool, pad: int = 10, flip: float = 0.5,
                     erasing: float = 0.5) -> T.Compose:
    """Resize to height x width; training adds flip, pad-and-random-crop and random erasing (the
    strong baseline's augmentations; erasing fills with 0 after normalisation, the mean)."""
    t = [T.Resize((height, width), interpolation=T.InterpolationMode.BILINEAR)]
    if train:
        t += [T.RandomHorizontalFlip(flip), T.Pad(pad), T.RandomCrop((height, width))]
    t += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if train and erasing > 0:
        t.append(T.RandomErasing(p=erasing, value=0))
    return T.Compose(t)


def clothes_transform(size: int, train: bool, pad: int = 10, flip: float = 0.5) -> T.Compose:
    """Templates and clothes patches: a size x size square; training adds flip and pad-and-crop
    (scaled to the template size)."""
    t = [T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR)]
    if train:
        p = max(1, round(pad * size / 128))
        t += [T.RandomHorizontalFlip(flip), T.Pad(p), T.RandomCrop((size, size))]
    t += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(t)


class ReidImages(torch.utils.data.Dataset):
    """Items of one split: `image`, `clothes` (unless clothes="none"), `label` (training label,
    else pid), `camid`, `index`."""

    def __init__(self, root, split: Split, person_tf, clothes_tf=None, clothes: str = "none", boxes=None,
                 variant: str = "raw"):
        if clothes not in ("none", "template", "box"):
            raise ValueError(f"clothes={clothes!r}: expected none, template or box")
        if clothes == "template" and split.templates is None:
            raise DataError(f"the {split.name} split has no templates (a COCAS+ list with template_path is needed)")
        if clothes == "box":
            boxes = np.asarray(boxes, dtype=np.float64)
            if boxes.shape != (len(split), 4):
                raise ValueError(f"boxes of shape {boxes.shape} for {len(split)} {split.name} images (need N x 4)")
        self.root, self.split, self.variant = root, split, variant
        self.person_tf, self.clothes_tf, self.clothes, self.boxes = person_tf, clothes_tf, clothes, boxes
        self.targets = split.labels if split.labels is not None else split.pids

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        s = self.split
        img = open_rgb(image_path(self.root, s.files[i], self.variant))
        out = {"image": self.person_tf(img), "label": int(self.targets[i]), "camid": int(s.camids[i]), "index": i}
        if self.clothes == "template":
            out["clothes"] = self.clothes_tf(open_rgb(self.root / s.templates[i]))
        elif self.clothes == "box":
            out["clothes"] = self.clothes_tf(crop(img, self.boxes[i]))
        return out


def crop(img: Image.Image, box) -> Image.Image:
    """The box (x1, y1, x2, y2, pixels) clipped to the image, at least 2 x 2 pixels."""
    w, h = img.size
    x1, y1 = min(max(0.0, box[0]), w - 2), min(max(0.0, box[1]), h - 2)
    x2, y2 = max(min(float(w), box[2]), x1 + 2), max(min(float(h), box[3]), y1 + 2)
    return img.crop((int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2))))


class PixelImages(torch.utils.data.Dataset):
    """The raw-pixel baseline's features: the image resized to width x height (8 x 16), RGB in
    [0, 1], flattened (`pixels`), with `index`."""

    def __init__(self, root, split: Split, variant: str = "raw", height: int = 16, width: int = 8):
        self.root, self.split, self.variant, self.size = root, split, variant, (width, height)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        img = open_rgb(image_path(self.root, self.split.files[i], self.variant)).resize(self.size, Image.BILINEAR)
        return {"pixels": torch.from_numpy(np.asarray(img, np.float32).reshape(-1) / 255.0), "index": i}
