"""ActivityNet-1.3 file formats shared by bsnpp and actnet_challenge (parsing and writing only).

* :mod:`.annotations` -- the ground-truth JSON (``activity_net.v1-3.min.json``);
* :mod:`.features` -- snippet features: a CSV per video or one HDF5 file;
* :mod:`.submissions` -- proposal, detection and classification submission files, read and
  written;
* :mod:`.common` -- the error type and the checks every reader shares.

Every reader validates what it reads and raises :class:`FormatError` (a ``ValueError``) whose
message starts with the file (or ``<dict>`` for an in-memory document) and names the video and the
key at fault. Readers keep ids exactly as the file writes them; :func:`normalize_video_id` strips
the ``v_`` prefix that BSN/BMN's files add to the YouTube id used by the ground truth and by
submission files. BSN's own preprocessed files (``video_info_new.csv``, ``anet_anno_action.json``)
and the THUMOS14 annotation CSV are read by ``bsnpp.records``: only bsnpp uses them.
"""
from shared.formats.activitynet.annotations import GroundTruth, load_ground_truth, read_ground_truth
from shared.formats.activitynet.common import FormatError, load_json, normalize_video_id
from shared.formats.activitynet.features import (
    CsvFeatureFolder,
    FeatureStore,
    Hdf5FeatureFile,
    MissingFeatureError,
    read_feature_csv,
)
from shared.formats.activitynet.submissions import (
    Submission,
    classification_submission,
    detection_submission,
    load_submission,
    proposal_submission,
    read_classification_json,
    read_proposal_json,
    write_classification_json,
    write_detection_json,
    write_proposal_json,
    write_submission,
)

__all__ = ["FormatError", "MissingFeatureError", "normalize_video_id", "load_json", "GroundTruth",
           "load_ground_truth", "read_ground_truth", "read_feature_csv", "FeatureStore", "CsvFeatureFolder",
           "Hdf5FeatureFile", "Submission", "load_submission", "read_proposal_json", "read_classification_json",
           "proposal_submission", "detection_submission", "classification_submission", "write_submission",
           "write_proposal_json", "write_detection_json", "write_classification_json"]
