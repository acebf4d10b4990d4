"""Snippet-feature files, one ``float32 [L, C]`` array per video (L snippets, C channels):

* a folder of per-video CSVs, a header line (``f0,f1,...`` as BSN writes it, or any names; a
  first line that is entirely numeric is taken as data) and one row per snippet
  (:func:`read_feature_csv`, :class:`CsvFeatureFolder`; BSN: ``csv_mean_100/v_<id>.csv``);
* one HDF5 file with one 2-D dataset per video, ``[L, C]`` (or ``[C, L]`` with ``layout="CL"``),
  any C (:class:`Hdf5FeatureFile`).
"""
from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.formats.activitynet.common import FormatError, PathLike, fail

__all__ = ["MissingFeatureError", "read_feature_csv", "FeatureStore", "CsvFeatureFolder", "Hdf5FeatureFile"]


class MissingFeatureError(LookupError):
    """A feature store holds no features for the requested video (the message names the file)."""


def _is_numeric_row(fields: Sequence[str]) -> bool:
    try:
        for x in fields:
            float(x)
    except ValueError:
        return False
    return True


def read_feature_csv(path: PathLike) -> np.ndarray:
    """Read one video's snippet features from a CSV -> ``float32 [L, C]`` (one row per snippet).

    The first line is a header (BSN writes ``f0..f{C-1}``; any names are accepted) unless it is
    entirely numeric, in which case it is data. Raises :class:`FormatError` naming the file for
    an empty file, no data rows, a header / row with a different number of columns than the
    others, or a non-numeric value (with its row and column). Non-finite values (``nan``,
    ``inf``) parse; checking them is the caller's job.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        if not first.strip():
            raise fail(path, "empty file")
        fields = next(csv.reader([first]))
        has_header = not _is_numeric_row(fields)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                arr = np.loadtxt(f if has_header else _chain_first(first, f), delimiter=",",
                                 dtype=np.float32, ndmin=2)
        except ValueError as e:
            msg = str(e).split("; use `usecols`")[0].rstrip(".")
            raise fail(path, f"malformed feature CSV: {msg} (numpy's row numbering, "
                              f"{'after the header line' if has_header else 'no header line'})"
                        ) from None
    if arr.size == 0 or arr.shape[0] == 0:
        raise fail(path, "no data rows")
    if has_header and len(fields) != arr.shape[1]:
        raise fail(path, f"the header has {len(fields)} columns but the rows have {arr.shape[1]}")
    return arr


def _chain_first(first: str, f):
    yield first
    yield from f


class FeatureStore:
    """Where per-video snippet features live: ``keys()``, ``has(id)``, ``load(id) -> [L, C]``.

    ``load_range(id, start, stop)`` returns rows ``start:stop`` (a store that can read a slice
    without loading everything overrides it) and ``shape(id)`` the ``(L, C)`` shape.
    ``describe(id)`` names the file for messages. Ids may be given with or without BSN's ``v_``
    prefix; the store resolves both.
    """

    def keys(self) -> list[str]:
        raise NotImplementedError

    def has(self, video_id: str) -> bool:
        raise NotImplementedError

    def load(self, video_id: str) -> np.ndarray:
        raise NotImplementedError

    def describe(self, video_id: str) -> str:
        raise NotImplementedError

    def load_range(self, video_id: str, start: int, stop: int) -> np.ndarray:
        return self.load(video_id)[start:stop]

    def shape(self, video_id: str) -> tuple[int, int]:
        return tuple(self.load(video_id).shape)

    def __contains__(self, video_id: str) -> bool:
        return self.has(video_id)


def _candidates(video_id: str, prefix: str = "v_") -> list[str]:
    video_id = str(video_id)
    out = [video_id]
    if prefix and video_id.startswith(prefix):
        out.append(video_id[len(prefix):])
    elif prefix:
        out.append(prefix + video_id)
    return out


class CsvFeatureFolder(FeatureStore):
    """A folder of per-video CSVs named ``<prefix><video_id>.csv`` (BSN: ``csv_mean_100/v_<id>.csv``).

    ``keys()`` lists the ids (file stems without the prefix). ``load`` reads with
    :func:`read_feature_csv`; a missing file raises :class:`MissingFeatureError`.
    """

    def __init__(self, folder: PathLike, prefix: str = "v_", suffix: str = ".csv"):
        self.folder = Path(folder)
        self.prefix = prefix
        self.suffix = suffix
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: feature folder does not exist")

    def _path(self, video_id: str) -> Path | None:
        video_id = str(video_id)
        names = [self.prefix + video_id]
        if self.prefix and video_id.startswith(self.prefix):
            names.append(video_id)
        for n in names:
            p = self.folder / (n + self.suffix)
            if p.is_file():
                return p
        return None

    def keys(self) -> list[str]:
        out = []
        for p in sorted(self.folder.iterdir()):
            if p.name.endswith(self.suffix) and p.name.startswith(self.prefix):
                out.append(p.name[len(self.prefix):len(p.name) - len(self.suffix)])
        return out

    def has(self, video_id: str) -> bool:
        return self._path(video_id) is not None

    def describe(self, video_id: str) -> str:
        p = self._path(video_id)
        return str(p if p is not None else self.folder / (self.prefix + str(video_id) + self.suffix))

    def load(self, video_id: str) -> np.ndarray:
        p = self._path(video_id)
        if p is None:
            raise MissingFeatureError(f"{self.describe(video_id)}: no such feature file "
                                      f"(video {video_id!r})")
        return read_feature_csv(p)

    def __repr__(self) -> str:
        return f"CsvFeatureFolder({str(self.folder)!r}, prefix={self.prefix!r})"


class Hdf5FeatureFile(FeatureStore):
    """One HDF5 file, one 2-D dataset per video at the top level (named ``<id>`` or ``v_<id>``).

    ``layout="LC"`` (default) stores ``[L, C]``; ``layout="CL"`` stores ``[C, L]`` and is
    transposed on load. Any channel count. The file is opened lazily and reopened in a new process
    (DataLoader workers), so a store can be handed to workers. ``load_range`` reads only the slice.
    """

    def __init__(self, path: PathLike, layout: str = "LC"):
        import h5py  # noqa: F401  (fail early when h5py is missing)

        self.path = Path(path)
        if layout not in ("LC", "CL"):
            raise ValueError(f"layout must be 'LC' or 'CL', got {layout!r}")
        self.layout = layout
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such HDF5 file")
        self._file = None
        self._pid = None
        try:
            self._h5()
        except OSError as e:
            raise FormatError(f"{self.path}: not a readable HDF5 file ({e})") from None

    def _h5(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def _name(self, video_id: str) -> str | None:
        f = self._h5()
        for n in _candidates(video_id):
            if n in f:
                return n
        return None

    def keys(self) -> list[str]:
        import h5py

        f = self._h5()
        return [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]

    def has(self, video_id: str) -> bool:
        return self._name(video_id) is not None

    def describe(self, video_id: str) -> str:
        n = self._name(video_id)
        return f"{self.path}[{n if n is not None else video_id}]"

    def _dataset(self, video_id: str):
        import h5py

        n = self._name(video_id)
        if n is None:
            raise MissingFeatureError(f"{self.path}: no dataset for video {video_id!r}")
        ds = self._h5()[n]
        if not isinstance(ds, h5py.Dataset):
            raise FormatError(f"{self.path}[{n}]: expected a dataset, found a group")
        if ds.ndim != 2 or min(ds.shape) == 0:
            raise FormatError(f"{self.path}[{n}]: expected a non-empty 2-D "
                              f"{'[L, C]' if self.layout == 'LC' else '[C, L]'} dataset, "
                              f"got shape {ds.shape}")
        if not np.issubdtype(ds.dtype, np.number):
            raise FormatError(f"{self.path}[{n}]: expected a numeric dataset, got {ds.dtype}")
        return ds

    def shape(self, video_id: str) -> tuple[int, int]:
        s = self._dataset(video_id).shape
        return (int(s[0]), int(s[1])) if self.layout == "LC" else (int(s[1]), int(s[0]))

    def load(self, video_id: str) -> np.ndarray:
        a = np.asarray(self._dataset(video_id)[()], dtype=np.float32)
        return np.ascontiguousarray(a if self.layout == "LC" else a.T)

    def load_range(self, video_id: str, start: int, stop: int) -> np.ndarray:
        ds = self._dataset(video_id)
        if self.layout == "LC":
            a = ds[start:stop]
        else:
            a = ds[:, start:stop].T
        return np.ascontiguousarray(np.asarray(a, dtype=np.float32))

    def __repr__(self) -> str:
        return f"Hdf5FeatureFile({str(self.path)!r}, layout={self.layout!r})"
