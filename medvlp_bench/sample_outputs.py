"""Per-sample test outputs of a run: one compressed numpy file beside its record, checked by sha256.

File: ``<record file stem>.outputs.npz`` (``numpy.savez_compressed``, read with ``allow_pickle=False``) in the
record's folder; the record holds ``"outputs": {"file": <name>, "sha256": <hex digest of the file's bytes>}``.
Written atomically like the record (temp file, fsync, :func:`os.replace`). Arrays (test split, in test order):

* every kind: ``kind`` (0-d str: ``classification`` | ``detection`` | ``segmentation`` | ``retrieval``),
  ``sample_id`` (N,) str, ``patient_id`` (N,) str (equal to ``sample_id`` where a dataset has no patient ids);
* ``classification``: ``task_type`` (0-d str: ``binary`` | ``multilabel`` | ``multiclass``), ``label_names``
  (L,) str, ``target`` (N, L) 0/1 for binary / multilabel or (N,) class index for multiclass, ``score`` (N, L)
  raw logits or similarities;
* ``detection``: ``pred_boxes`` (M, 4) x1, y1, x2, y2 in original image pixels, ``pred_scores`` (M,),
  ``pred_index`` (M,) index into ``sample_id``; ``true_boxes`` (K, 4), ``true_index`` (K,); ``iou_thresholds``
  (T,); ``score_threshold`` 0-d (predictions below it were dropped);
* ``segmentation``: ``dice`` (N,) per image, ``truth_empty`` (N,) bool, ``pred_empty`` (N,) bool;
* ``retrieval``: ``rank_image_to_text`` (N,) 0-based rank of the first correct text for each image query and
  ``rank_text_to_image`` (Q,) the same for each text query (Q = N for image-report retrieval; the number of
  prompts for class-level retrieval against class prompts).

:func:`validate_outputs` checks names, shapes and kinds; every error (:class:`SampleOutputsError`) names the file.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from medvlp_bench.data.build_once import atomic_write_bytes
from medvlp_bench.errors import MedvlpError

SUFFIX = ".outputs.npz"
KINDS = ("classification", "detection", "segmentation", "retrieval")
TASK_TYPES = ("binary", "multilabel", "multiclass")

#: arrays required per kind (besides ``kind``, ``sample_id``, ``patient_id``)
REQUIRED = {
    "classification": ("task_type", "label_names", "target", "score"),
    "detection": ("pred_boxes", "pred_scores", "pred_index", "true_boxes", "true_index", "iou_thresholds",
                  "score_threshold"),
    "segmentation": ("dice", "truth_empty", "pred_empty"),
    "retrieval": ("rank_image_to_text", "rank_text_to_image"),
}


class SampleOutputsError(MedvlpError):
    """Per-sample outputs are missing, altered (sha256 mismatch) or malformed; the message names the file."""

    def __init__(self, message: str, *, file: Path | str | None = None):
        super().__init__(f"{file}: {message}" if file is not None else message)
        self.file = file


def outputs_filename(record_filename: str) -> str:
    """``<record file stem>.outputs.npz`` for a record file name ``<stem>.json``."""
    return f"{Path(record_filename).stem}{SUFFIX}"


def sha256_of(path: Path | str) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_outputs(outputs: Mapping[str, Any], path: Path | str) -> str:
    """Validate ``outputs`` and write them atomically to ``path``; returns the file's sha256."""
    target = Path(path)
    arrays = {name: np.asarray(value) for name, value in outputs.items()}
    validate_outputs(arrays, source=target)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    atomic_write_bytes(target, data)
    return hashlib.sha256(data).hexdigest()


def read_outputs(path: Path | str, sha256: Optional[str] = None) -> dict[str, np.ndarray]:
    """The arrays of an outputs file, validated; with ``sha256``, the file's digest must equal it."""
    source = Path(path)
    if not source.is_file():
        raise SampleOutputsError("per-sample outputs file not found", file=source)
    if sha256 is not None and sha256_of(source) != sha256:
        raise SampleOutputsError(
            "sha256 of the per-sample outputs does not match the record's (the file was changed or replaced); "
            "rerun the record with --force to rewrite both", file=source)
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise SampleOutputsError(f"not a readable numpy .npz file ({error})", file=source) from error
    validate_outputs(arrays, source=source)
    return arrays


def record_outputs(record: Any, record_path: Path | str) -> Optional[dict[str, np.ndarray]]:
    """The per-sample outputs of the record read from ``record_path`` (checked against its sha256), or ``None``
    when the record has none (records written before per-sample outputs existed)."""
    reference = getattr(record, "outputs", None)
    if not reference:
        return None
    return read_outputs(Path(record_path).parent / reference["file"], reference["sha256"])


def validate_outputs(arrays: Mapping[str, np.ndarray], *, source: Path | str | None = None) -> None:
    """Raise :class:`SampleOutputsError` (naming ``source``) unless ``arrays`` follow the module's layout."""
    problems = _problems(arrays)
    if problems:
        raise SampleOutputsError("invalid per-sample outputs: " + "; ".join(problems), file=source)


def _text(arrays: Mapping[str, np.ndarray], name: str) -> Optional[str]:
    value = arrays.get(name)
    if value is None or value.ndim != 0 or value.dtype.kind not in "US":
        return None
    return str(value)


def _problems(arrays: Mapping[str, np.ndarray]) -> list[str]:
    kind = _text(arrays, "kind")
    if kind not in KINDS:
        return [f"'kind' must be a 0-d string, one of {KINDS}, got {arrays.get('kind')!r}"]
    missing = [name for name in ("sample_id", "patient_id", *REQUIRED[kind]) if name not in arrays]
    if missing:
        return [f"{kind} outputs lack {missing}"]
    problems = []
    n = len(arrays["sample_id"]) if arrays["sample_id"].ndim == 1 else -1
    for name in ("sample_id", "patient_id"):
        if arrays[name].ndim != 1 or arrays[name].dtype.kind not in "US" or len(arrays[name]) != n:
            problems.append(f"'{name}' must be a 1-d string array of the test samples")
    if n >= 0 and len(set(arrays["sample_id"].tolist())) != n:
        problems.append("'sample_id' has duplicates")
    return problems + _KIND_CHECKS[kind](arrays, max(n, 0))


def _classification(arrays: Mapping[str, np.ndarray], n: int) -> list[str]:
    problems = []
    task_type = _text(arrays, "task_type")
    if task_type not in TASK_TYPES:
        problems.append(f"'task_type' must be one of {TASK_TYPES}")
    labels = arrays["label_names"]
    n_labels = len(labels) if labels.ndim == 1 else -1
    score, target = arrays["score"], arrays["target"]
    if score.shape != (n, n_labels) or score.dtype.kind not in "fiu":
        problems.append(f"'score' must be numeric of shape ({n}, {n_labels}), got {score.shape}")
    if task_type == "multiclass":
        if target.shape != (n,) or target.dtype.kind not in "iu" or (n and not 0 <= target.min() <= target.max()
                                                                      < n_labels):
            problems.append(f"multiclass 'target' must be ({n},) class indices in [0, {n_labels})")
    elif target.shape != (n, n_labels) or not np.isin(target, (0, 1)).all():
        problems.append(f"'target' must be 0/1 of shape ({n}, {n_labels}), got {target.shape}")
    return problems


def _detection(arrays: Mapping[str, np.ndarray], n: int) -> list[str]:
    problems = []
    for boxes, scores, index in (("pred_boxes", "pred_scores", "pred_index"), ("true_boxes", None, "true_index")):
        count = len(arrays[index])
        if arrays[boxes].shape != (count, 4):
            problems.append(f"'{boxes}' must have shape ({count}, 4), got {arrays[boxes].shape}")
        elif (arrays[boxes][:, 2:] < arrays[boxes][:, :2]).any():
            row = int(np.flatnonzero((arrays[boxes][:, 2:] < arrays[boxes][:, :2]).any(axis=1))[0])
            problems.append(f"'{boxes}' row {row} is not x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")
        if arrays[index].ndim != 1 or arrays[index].dtype.kind not in "iu" or (
                count and not 0 <= arrays[index].min() <= arrays[index].max() < n):
            problems.append(f"'{index}' must be 1-d indices into sample_id ([0, {n}))")
        if scores and arrays[scores].shape != (count,):
            problems.append(f"'{scores}' must have shape ({count},)")
    if arrays["iou_thresholds"].ndim != 1 or not len(arrays["iou_thresholds"]):
        problems.append("'iou_thresholds' must be a non-empty 1-d array")
    if arrays["score_threshold"].ndim != 0:
        problems.append("'score_threshold' must be 0-d")
    return problems


def _per_image(arrays: Mapping[str, np.ndarray], n: int, names: tuple[str, ...]) -> list[str]:
    return [f"'{name}' must have shape ({n},), got {arrays[name].shape}" for name in names
            if arrays[name].shape != (n,)]


def _retrieval(arrays: Mapping[str, np.ndarray], n: int) -> list[str]:
    problems = _per_image(arrays, n, ("rank_image_to_text",))
    if arrays["rank_text_to_image"].ndim != 1 or arrays["rank_text_to_image"].dtype.kind not in "iu":
        problems.append(f"'rank_text_to_image' must be 1-d integer ranks, got {arrays['rank_text_to_image'].shape}")
    return problems


_KIND_CHECKS = {
    "classification": _classification,
    "detection": _detection,
    "segmentation": lambda arrays, n: _per_image(arrays, n, REQUIRED["segmentation"]),
    "retrieval": lambda arrays, n: _retrieval(arrays, n),
}
