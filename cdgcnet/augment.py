"""The training and evaluation datasets: decoding, the era's augmentation, normalisation.

Training (CCNet / mmsegmentation recipe): random scale in [0.5, 2.0] (image bilinear, label nearest),
padding to the crop (image with the mean, i.e. 0 after normalisation; label with 255), random crop,
random horizontal flip. Evaluation: the whole image, normalised, with its label.

The randomness of a training sample comes from a generator seeded by ``(seed, epoch, index)``
(the sampler passes ``(index, epoch)`` keys), not from a global RNG: a sample's augmentation is the
same whatever the number of workers or processes, and a resumed run sees exactly the crops an
uninterrupted one would have seen.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from cdgcnet.data import read_image

__all__ = ["SegDataset", "MEAN", "STD", "normalize"]

MEAN = (0.485, 0.456, 0.406)  # torchvision ImageNet statistics (RGB), what its weights expect
STD = (0.229, 0.224, 0.225)


def normalize(img: Image.Image) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (x - mean) / std


class SegDataset(torch.utils.data.Dataset):
    """Records of one split of a source (`cdgcnet.data`), decoded for training or evaluation.

    Training items: ``(image [3, h, w], label [h, w] int64, index)`` with (h, w) = ``crop``.
    Evaluation items: ``(image [3, H, W], label [H, W] int64 or an empty tensor, index)``.
    """

    def __init__(self, source, records, train: bool, crop=(769, 769), scale_range=(0.5, 2.0),
                 flip: bool = True, seed: int = 0):
        self.source = source
        self.records = list(records)
        self.train = train
        self.crop = (int(crop[0]), int(crop[1]))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = flip
        self.seed = int(seed)
        if self.scale_range[0] <= 0 or self.scale_range[0] > self.scale_range[1]:
            raise ValueError(f"--scale-range {scale_range}: need 0 < min <= max")

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int):
        """(PIL image, train-id label array or None) of a record, sizes checked."""
        rec = self.records[index]
        img = read_image(rec.image)
        if rec.label is None:
            return img, None
        label = self.source.read_label(rec.label)
        if label.ndim != 2 or label.shape != (img.height, img.width):
            raise ValueError(f"{rec.label}: label size {label.shape} differs from its image {rec.image} "
                             f"({img.height}, {img.width})")
        return img, label

    def __getitem__(self, key):
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        img, label = self.load(index)
        if not self.train:
            lab = torch.from_numpy(label.astype(np.int64)) if label is not None else torch.empty(0, dtype=torch.int64)
            return normalize(img), lab, index
        if label is None:
            raise ValueError(f"{self.records[index].image}: training needs a label")
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        return (*self._augment(img, label, rng), index)

    def _augment(self, img: Image.Image, label: np.ndarray, rng: np.random.Generator):
        s = rng.uniform(*self.scale_range)
        w, h = max(1, round(img.width * s)), max(1, round(img.height * s))
        img = img.resize((w, h), Image.BILINEAR)
        lab = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
        x = normalize(img)
        ch, cw = self.crop
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:  # pad bottom/right: image with the mean (0), label with ignore
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), value=0.0)
            lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=255)
        H, W = lab.shape
        top, left = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
        x = x[:, top:top + ch, left:left + cw]
        lab = lab[top:top + ch, left:left + cw]
        if self.flip and rng.random() < 0.5:
            x = x.flip(-1)
            lab = lab[:, ::-1]
        return x.contiguous(), torch.from_numpy(np.ascontiguousarray(lab).astype(np.int64))
