"""Tests of per-sample outputs: round trip beside a record, sha256 check, validation errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medvlp_bench.records import read_record, write_record
from medvlp_bench.sample_outputs import (
    SampleOutputsError,
    outputs_filename,
    read_outputs,
    record_outputs,
    sha256_of,
    write_outputs,
)
from test_records import make_record


def classification_outputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "kind": np.array("classification"),
        "sample_id": np.array([f"s{i}" for i in range(n)]),
        "patient_id": np.array([f"p{i // 2}" for i in range(n)]),
        "task_type": np.array("binary"),
        "label_names": np.array(["Pneumonia"]),
        "target": (np.arange(n) % 2).astype(np.int8)[:, None],
        "score": rng.normal(size=(n, 1)),
    }


def test_round_trip_beside_the_record(tmp_path):
    outputs = classification_outputs()
    path = write_record(make_record(), tmp_path, outputs=outputs)
    record = read_record(path)
    assert record.outputs["file"] == outputs_filename(path.name) == path.stem + ".outputs.npz"
    assert record.outputs["sha256"] == sha256_of(tmp_path / record.outputs["file"])
    arrays = record_outputs(record, path)
    assert set(arrays) == set(outputs)
    for name, value in outputs.items():
        np.testing.assert_array_equal(arrays[name], value)
    assert arrays["score"].dtype == np.float64


def test_sha256_mismatch_is_refused_naming_the_file(tmp_path):
    path = write_record(make_record(), tmp_path, outputs=classification_outputs())
    record = read_record(path)
    other = tmp_path / "other.outputs.npz"
    write_outputs(classification_outputs(seed=1), other)
    (tmp_path / record.outputs["file"]).write_bytes(other.read_bytes())
    with pytest.raises(SampleOutputsError, match=record.outputs["file"] + ".*sha256"):
        record_outputs(record, path)


def test_records_without_outputs_still_load(tmp_path):
    path = write_record(make_record(), tmp_path)
    data = json.loads(path.read_text())
    del data["outputs"]  # as written before per-sample outputs existed
    path.write_text(json.dumps(data))
    record = read_record(path)
    assert record.outputs is None
    assert record_outputs(record, path) is None


def test_malformed_outputs_are_refused_naming_the_file(tmp_path):
    bad = classification_outputs()
    bad["score"] = bad["score"][:3]
    with pytest.raises(SampleOutputsError, match=r"bad\.outputs\.npz.*'score' must be numeric of shape \(6, 1\)"):
        write_outputs(bad, tmp_path / "bad.outputs.npz")
    assert not list(tmp_path.iterdir())
    missing = classification_outputs()
    del missing["target"]
    with pytest.raises(SampleOutputsError, match=r"classification outputs lack \['target'\]"):
        write_outputs(missing, tmp_path / "missing.outputs.npz")
    with pytest.raises(SampleOutputsError, match="not found"):
        read_outputs(tmp_path / "absent.outputs.npz")


def test_a_record_refuses_a_malformed_outputs_reference(tmp_path):
    path = write_record(make_record(), tmp_path)
    data = json.loads(path.read_text())
    data["outputs"] = {"file": "../x.npz", "sha256": "0" * 64}
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match=f"{path.name}.*outputs must be null"):
        read_record(path)


def test_detection_and_segmentation_layouts_validate(tmp_path):
    ids = np.array(["a", "b", "c"])
    detection = {
        "kind": np.array("detection"), "sample_id": ids, "patient_id": ids,
        "pred_boxes": np.array([[0, 0, 10, 10.0], [5, 5, 9, 9]]), "pred_scores": np.array([0.9, 0.2]),
        "pred_index": np.array([0, 2]), "true_boxes": np.array([[1, 1, 10, 10.0]]), "true_index": np.array([0]),
        "iou_thresholds": np.array([0.4, 0.5]), "score_threshold": np.array(0.05),
    }
    write_outputs(detection, tmp_path / "det.outputs.npz")
    assert read_outputs(tmp_path / "det.outputs.npz")["pred_index"].tolist() == [0, 2]
    detection["pred_index"] = np.array([0, 3])
    with pytest.raises(SampleOutputsError, match="pred_index"):
        write_outputs(detection, tmp_path / "det2.outputs.npz")
    segmentation = {"kind": np.array("segmentation"), "sample_id": ids, "patient_id": ids,
                    "dice": np.array([1.0, 0.5, 0.0]), "truth_empty": np.array([True, False, False]),
                    "pred_empty": np.array([True, False, True])}
    write_outputs(segmentation, tmp_path / "seg.outputs.npz")


def test_inverted_boxes_are_refused_naming_the_row(tmp_path):
    ids = np.array(["a"])
    detection = {
        "kind": np.array("detection"), "sample_id": ids, "patient_id": ids,
        "pred_boxes": np.array([[0, 0, 10, 10.0], [5, 5, 4, 9]]), "pred_scores": np.array([0.9, 0.2]),
        "pred_index": np.array([0, 0]), "true_boxes": np.zeros((0, 4)), "true_index": np.zeros(0, dtype=int),
        "iou_thresholds": np.array([0.5]), "score_threshold": np.array(0.05),
    }
    with pytest.raises(SampleOutputsError, match="'pred_boxes' row 1 is not x1, y1, x2, y2"):
        write_outputs(detection, tmp_path / "det.outputs.npz")
