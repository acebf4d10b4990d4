"""Parsers of official file formats read by more than one paper package.

Parsing and validation only: no dataset logic, no label generation, no rescaling. A reader
returns plain Python / numpy data and raises :class:`FormatError` (a ``ValueError``) naming the
file and the offending video or key when the input is malformed.

* :mod:`shared.formats.activitynet` -- the ActivityNet-1.3 ground-truth JSON, BSN/BMN's
  ``video_info_new.csv`` and ``anet_anno_action.json``, the THUMOS14 annotation CSV, snippet
  feature files (one CSV per video, or one HDF5 file with one dataset per video) and the
  ActivityNet submission JSON of proposals / detections and video-level classification scores.
  Used by ``bsnpp`` (reads annotations and features, writes proposals) and ``actnet_challenge``
  (reads proposals, ground truth and classification scores).
"""

from shared.formats.activitynet import (  # noqa: F401
    CsvFeatureFolder,
    FeatureStore,
    FormatError,
    Hdf5FeatureFile,
    MissingFeatureError,
    load_json,
    normalize_video_id,
    read_anno_action_json,
    read_classification_json,
    read_feature_csv,
    read_ground_truth,
    read_proposal_json,
    read_thumos_csv,
    read_video_info_csv,
    write_proposal_json,
)
