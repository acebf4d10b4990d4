"""Parsers and writers of official file formats used by more than one paper package.

Parsing, validation and writing only: no dataset logic, no label generation, no rescaling. A
reader returns plain Python / numpy data and raises :class:`FormatError` (a ``ValueError``) naming
the file and the offending video or key when the input is malformed.

* :mod:`shared.formats.activitynet` -- the ActivityNet-1.3 ground-truth JSON, snippet feature
  files (one CSV per video, or one HDF5 file with one dataset per video) and the submission files
  of proposals, detections and video-level classification scores. Used by ``bsnpp`` (reads
  annotations and features, writes proposals), ``actnet_challenge`` (reads proposals, ground
  truth, features; writes proposals, detections, scores) and ``shared.metrics.activitynet``.
"""

from shared.formats.activitynet import (  # noqa: F401
    CsvFeatureFolder,
    FeatureStore,
    FormatError,
    GroundTruth,
    Hdf5FeatureFile,
    MissingFeatureError,
    Submission,
    classification_submission,
    detection_submission,
    load_ground_truth,
    load_json,
    load_submission,
    normalize_video_id,
    proposal_submission,
    read_classification_json,
    read_feature_csv,
    read_ground_truth,
    read_proposal_json,
    write_classification_json,
    write_detection_json,
    write_proposal_json,
    write_submission,
)
