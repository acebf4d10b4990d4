"""Label tables of the three datasets: Cityscapes labelIds -> trainIds, PASCAL VOC classes, COCO-Stuff ids.

Cityscapes (cityscapesScripts ``helpers/labels.py``): 34 labelIds 0..33 (plus -1, the licence
plate, which never appears in a labelIds PNG); 19 of them are evaluated and get trainIds 0..18,
the other 15 are void (trainId 255, ``ignoreInEval``). COCO-Stuff: 182 ids (91 thing ids of which
11 are unused by COCO, then 91 stuff ids); the 171 used ones are numbered 0..170 as mmsegmentation's
converters number them. The 10k release stores ids 1-based in ``.mat`` files (0 = unlabeled), the
164k release stores them 0-based in PNGs (255 = unlabeled).
"""
from __future__ import annotations

import numpy as np

from shared.metrics.segmentation import CITYSCAPES_CATEGORIES, CITYSCAPES_CLASSES

__all__ = ["CITYSCAPES_LABELS", "CITYSCAPES_CLASSES", "CITYSCAPES_CATEGORIES", "LABEL_TO_TRAIN",
           "TRAIN_TO_LABEL", "VOC_CLASSES", "COCOSTUFF_CLASSES", "COCOSTUFF_UNUSED_IDS",
           "COCO_TO_TRAIN", "TRAIN_TO_COCO", "IGNORE"]

IGNORE = 255

# (name, labelId, trainId): cityscapesScripts labels.py, in labelId order.
CITYSCAPES_LABELS = (
    ("unlabeled", 0, IGNORE), ("ego vehicle", 1, IGNORE), ("rectification border", 2, IGNORE),
    ("out of roi", 3, IGNORE), ("static", 4, IGNORE), ("dynamic", 5, IGNORE), ("ground", 6, IGNORE),
    ("road", 7, 0), ("sidewalk", 8, 1), ("parking", 9, IGNORE), ("rail track", 10, IGNORE),
    ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4), ("guard rail", 14, IGNORE),
    ("bridge", 15, IGNORE), ("tunnel", 16, IGNORE), ("pole", 17, 5), ("polegroup", 18, IGNORE),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9),
    ("sky", 23, 10), ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14),
    ("bus", 28, 15), ("caravan", 29, IGNORE), ("trailer", 30, IGNORE), ("train", 31, 16),
    ("motorcycle", 32, 17), ("bicycle", 33, 18),
)
NUM_CITYSCAPES_LABEL_IDS = len(CITYSCAPES_LABELS)  # 34: a labelId > 33 is an error

# uint8 look-up tables; entries for values that are not labelIds stay 255 (callers check validity)
LABEL_TO_TRAIN = np.full(256, IGNORE, dtype=np.uint8)
TRAIN_TO_LABEL = np.zeros(256, dtype=np.uint8)  # 255 (void) -> labelId 0 "unlabeled"
for _name, _lid, _tid in CITYSCAPES_LABELS:
    LABEL_TO_TRAIN[_lid] = _tid
    if _tid != IGNORE:
        TRAIN_TO_LABEL[_tid] = _lid

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

# COCO ids (1-based, as in the 10k .mat files) that COCO never uses: 12 street sign, 26 hat,
# 29 shoe, 30 eye glasses, 45 plate, 66 mirror, 68 window, 69 desk, 71 door, 83 blender, 91 hair brush.
COCOSTUFF_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)

COCOSTUFF_CLASSES = (
    # 80 things
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
    # 91 stuff (ids 92..182)
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard",
    "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain",
    "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile",
    "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel",
    "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain",
    "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
    "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea",
    "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw", "structural-other",
    "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete",
    "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other", "waterdrops",
    "window-blind", "window-other", "wood",
)

# 1-based COCO id (1..182) -> train id 0..170; unused ids and 0 (unlabeled) -> 255
COCO_TO_TRAIN = np.full(256, IGNORE, dtype=np.uint8)
TRAIN_TO_COCO = np.zeros(256, dtype=np.int64)  # train id -> 1-based COCO id
_used = [i for i in range(1, 183) if i not in COCOSTUFF_UNUSED_IDS]
for _t, _cid in enumerate(_used):
    COCO_TO_TRAIN[_cid] = _t
    TRAIN_TO_COCO[_t] = _cid
assert len(_used) == len(COCOSTUFF_CLASSES) == 171
