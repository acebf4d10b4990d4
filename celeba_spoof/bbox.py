"""Face boxes: ``<image>_BB.txt`` read, scaled and clamped as the official CelebA-Spoof code does.

A box file holds one line ``x y w h score`` in a 224 x 224 reference frame. The official reader
(``intra_dataset_code/client.py``, ``read_image``) does, for an image of size ``real_w x real_h``:

1. ``x, y, w, h = int(float(.))`` each (truncation toward zero), then
   ``w = int(w * (real_w / 224))``, ``h = int(h * (real_h / 224))``,
   ``x = int(x * (real_w / 224))``, ``y = int(y * (real_h / 224))``;
2. ``y1 = 0 if y < 0 else y``, ``x1 = 0 if x < 0 else x``,
   ``y2 = real_h if y1 + h > real_h else y + h``, ``x2 = real_w if x1 + w > real_w else x + w``
   (note: the test uses ``y1 + h`` but the value is ``y + h``), crop ``img[y1:y2, x1:x2]``;
3. a file that does not split into 5 fields, or values that do not parse, leaves the whole image.

:func:`official_box` reproduces 1-2 bit for bit. Real files are sometimes empty (issue #56) or
hold negative values (issue #31: "produced by the CNN model"). Where the official formulas give
an empty crop (``x2 <= x1`` or ``y2 <= y1``: non-positive width/height, a box outside the image)
or a negative end that numpy would read from the far edge, the official code crashes or crops a
wrong region; we keep the whole image instead and say so in the returned status.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REF = 224  # the reference frame of the _BB.txt coordinates

# status values (counted by the data report)
OK, EMPTY, MALFORMED, MISSING, DEGENERATE = "ok", "empty", "malformed", "missing", "degenerate"


@dataclass(frozen=True)
class BoxFile:
    """What a ``_BB.txt`` holds: ``values`` = (x, y, w, h, score) as floats, or None."""

    status: str  # ok | empty | malformed | missing
    values: tuple | None = None

    @property
    def negative(self) -> bool:
        return self.values is not None and any(v < 0 for v in self.values[:4])


def bbox_path(image_path: str | Path) -> Path:
    """``<dir>/000003.jpg`` -> ``<dir>/000003_BB.txt`` (the official ``image_path[:-4] + '_BB.txt'``,
    written for any extension)."""
    p = Path(image_path)
    return p.with_name(p.stem + "_BB.txt")


def parse_box_text(text: str) -> BoxFile:
    """Parse the first line of a box file (the official reader reads one line)."""
    line = text.splitlines()[0] if text.strip() else ""
    if not line.strip():
        return BoxFile(EMPTY)
    parts = line.split()
    if len(parts) != 5:
        return BoxFile(MALFORMED)
    try:
        vals = tuple(float(v) for v in parts)
    except ValueError:
        return BoxFile(MALFORMED)
    if any(v != v or v in (float("inf"), float("-inf")) for v in vals):
        return BoxFile(MALFORMED)
    return BoxFile(OK, vals)


def read_box_file(path: str | Path) -> BoxFile:
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return BoxFile(MISSING)
    except OSError:
        return BoxFile(MALFORMED)
    return parse_box_text(text)


def official_box(values, real_w: int, real_h: int) -> tuple[int, int, int, int]:
    """The official scaling and clamping (steps 1-2 of the module docstring) -> (x1, y1, x2, y2)
    as the official slice bounds, possibly degenerate."""
    x, y, w, h = (int(float(v)) for v in values[:4])
    w = int(w * (real_w / REF))
    h = int(h * (real_h / REF))
    x = int(x * (real_w / REF))
    y = int(y * (real_h / REF))
    y1 = 0 if y < 0 else y
    x1 = 0 if x < 0 else x
    y2 = real_h if y1 + h > real_h else y + h
    x2 = real_w if x1 + w > real_w else x + w
    return x1, y1, x2, y2


def crop_box(box: BoxFile, real_w: int, real_h: int, negative: str = "clamp") -> tuple[tuple, str]:
    """The crop ``(x1, y1, x2, y2)`` for an image of ``real_w x real_h`` and the status:
    ``ok``; ``empty`` / ``malformed`` / ``missing`` (whole image, as the official reader keeps it);
    ``degenerate`` (the official crop is empty or wraps around: whole image).

    ``negative="clamp"`` (default) treats a box with negative values as the official code does
    (negative x / y clamped to 0); ``negative="whole"`` keeps the whole image for any such box.
    """
    whole = (0, 0, int(real_w), int(real_h))
    if box.status != OK:
        return whole, box.status
    if negative == "whole" and box.negative:
        return whole, DEGENERATE
    if negative not in ("clamp", "whole"):
        raise ValueError(f"negative must be 'clamp' or 'whole', got {negative!r}")
    x1, y1, x2, y2 = official_box(box.values, real_w, real_h)
    if x2 <= x1 or y2 <= y1 or x2 <= 0 or y2 <= 0:
        return whole, DEGENERATE
    return (x1, y1, x2, y2), OK


def to_reference(x: float, y: float, w: float, h: float, real_w: int, real_h: int) -> tuple:
    """Pixel box -> the 224-frame values a ``_BB.txt`` holds (used by the toy writer)."""
    return x * REF / real_w, y * REF / real_h, w * REF / real_w, h * REF / real_h
