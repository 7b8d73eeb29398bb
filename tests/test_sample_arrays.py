"""Per-sample output arrays: identity columns (patient ids or their stand-in) and the classification layout."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from medvlp_bench.protocols.sample_arrays import classification_arrays, identity_arrays


def test_patient_ids_come_from_the_table_or_stand_in_as_sample_ids():
    with_patients = pd.DataFrame({"sample_id": ["x", "y"], "patient_id": ["p1", "p1"]})
    assert identity_arrays("detection", with_patients)["patient_id"].tolist() == ["p1", "p1"]
    without = pd.DataFrame({"sample_id": ["x", 7]})
    arrays = identity_arrays("segmentation", without)
    assert arrays["patient_id"].tolist() == ["x", "7"] and arrays["sample_id"].dtype.kind == "U"
    assert str(arrays["kind"]) == "segmentation" and arrays["kind"].shape == ()
    with pytest.raises(ValueError, match="unknown output kind"):
        identity_arrays("ranking", without)


def test_classification_arrays_keep_dtypes_and_survive_npz_without_pickle():
    table = pd.DataFrame({"sample_id": ["a", "b", "c"]})
    multilabel = classification_arrays("multilabel", ("l1", "l2"), table, np.ones((3, 2), np.float32),
                                       np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    assert multilabel["target"].dtype == np.int8 and multilabel["score"].dtype == np.float64
    multiclass = classification_arrays("multiclass", ("u", "v", "w"), table, np.zeros((3, 3)), np.array([2, 0, 1]))
    assert multiclass["target"].dtype == np.int64 and multiclass["target"].tolist() == [2, 0, 1]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **multilabel)
    buffer.seek(0)
    loaded = np.load(buffer, allow_pickle=False)
    assert loaded["label_names"].tolist() == ["l1", "l2"] and str(loaded["task_type"]) == "multilabel"
    with pytest.raises(ValueError, match="for a table of 3 samples"):
        classification_arrays("binary", ("p",), table, np.zeros((2, 1)), np.zeros((2, 1)))
