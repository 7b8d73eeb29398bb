"""Tests of run records: schema validation, config key, file names, atomic and concurrent writes, look-up."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from medvlp_bench.data import build_once
from medvlp_bench.records import (
    PROVENANCE_KEYS,
    SCHEMA_VERSION,
    RecordError,
    RunRecord,
    collect_provenance,
    config_key,
    find_record,
    load_records,
    read_record,
    record_filename,
    write_record,
)

PROVENANCE = {
    "package_version": "0.1.0",
    "git_sha": None,
    "torch_version": "2.4.0",
    "python_version": "3.11.7",
    "device": "cpu",
    "hostname": "test",
    "started_at": "2024-05-01T12:00:00+00:00",
    "finished_at": "2024-05-01T12:00:30.500000+00:00",
    "wall_seconds": 30.5,
}


def make_record(method="mgca", task="rsna_cls", pct=0.01, seed=0, auroc=0.8, **config_extra) -> RunRecord:
    config = {"method": method, "task": task, "pct": pct, "seed": seed, "encoder": "resnet50", **config_extra}
    return RunRecord(
        method=method,
        task=task,
        dataset="rsna",
        data_source="synthetic",
        pct=pct,
        seed=seed,
        protocol="linear_probe",
        metrics={"auroc": auroc, "accuracy": 0.7},
        primary_metric="auroc",
        higher_is_better=True,
        n_train=160,
        n_val=50,
        n_test=50,
        checkpoint=None,
        checkpoint_sha256=None,
        encoder={"arch": "resnet50", "global_dim": 2048},
        config=config,
        config_key=config_key(config),
        split_hash="0" * 64,
        provenance=dict(PROVENANCE),
        plugins={role: {"name": name, "distribution": "medvlp-bench", "version": "0.1.0"}
                 for role, name in (("method", method), ("task", task), ("dataset", "rsna"),
                                    ("protocol", "linear_probe"), ("encoder", "resnet50"))},
    )


def test_config_key_is_sha256_of_canonical_json_and_independent_of_order():
    config = {"b": {"y": 2, "x": [1, 2]}, "a": "text"}
    reordered = {"a": "text", "b": {"x": [1, 2], "y": 2}}
    expected = hashlib.sha256(b'{"a":"text","b":{"x":[1,2],"y":2}}').hexdigest()
    assert config_key(config) == config_key(reordered) == expected
    assert config_key({**config, "a": "other"}) != expected


def test_config_key_rejects_non_json_values():
    with pytest.raises(RecordError, match="JSON"):
        config_key({"path": Path("/tmp")})


def test_round_trip_through_a_file(tmp_path):
    record = make_record(checkpoint_path="ckpt/mgca.ckpt")
    path = write_record(record, tmp_path / "results")
    assert path.parent == tmp_path / "results"
    data = json.loads(path.read_text())
    assert list(data)[0] == "schema_version" and data["schema_version"] == SCHEMA_VERSION
    assert read_record(path) == record
    assert RunRecord.from_dict(record.to_dict()) == record


def test_tuples_in_config_are_stored_as_lists():
    config = {"sizes": (1, 2)}
    record = make_record()
    record_with_tuple = RunRecord(**{**record.to_dict(), "config": config, "config_key": config_key(config)})
    assert record_with_tuple.config == {"sizes": [1, 2]}


def test_record_filename_pattern_and_safe_characters():
    record = make_record(pct=0.1, seed=2)
    assert record_filename(record) == f"mgca__rsna_cls__pct0.1__seed2__{record.config_key[:12]}.json"
    odd = make_record(method="my method/v2", pct=1.0)
    name = record_filename(odd)
    assert name.startswith("my-method-v2__rsna_cls__pct1__seed0__")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema_version": 3}, "unsupported schema_version 3"),
        ({"plugins": {"method": {"name": "mgca"}}}, "plugins lacks the role 'task'"),
        ({"plugins": {"method": {"name": "mgca"}}}, "plugins.method must be an object of strings"),
        ({"data_source": "mixed"}, "data_source"),
        ({"pct": 0.0}, "pct"),
        ({"seed": True}, "seed"),
        ({"n_train": -1}, "n_train"),
        ({"metrics": {"auroc": 1.5}}, "metric 'auroc'"),
        ({"metrics": {"auroc": float("inf")}}, "metric 'auroc'"),
        ({"primary_metric": "dice"}, "primary_metric 'dice'"),
        ({"config_key": "0" * 64}, "config_key"),
        ({"checkpoint_sha256": "abc"}, "checkpoint_sha256"),
        ({"provenance": {**PROVENANCE, "finished_at": "2024-05-01T12:00:30"}}, "finished_at"),
        ({"provenance": {"device": "cpu"}}, "provenance lacks"),
        ({"surprise": 1}, "unknown fields"),
    ],
)
def test_invalid_records_are_rejected_naming_the_file(change, message):
    data = {**make_record().to_dict(), **change}
    with pytest.raises(RecordError, match=re.escape(message)) as error:
        RunRecord.from_dict(data, source="results/x.json")
    assert str(error.value).startswith("results/x.json: ")


def test_a_schema_1_record_loads_without_plugins_and_keeps_its_layout(tmp_path):
    data = make_record().to_dict()
    del data["plugins"]
    data["schema_version"] = 1
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = read_record(path)
    assert old.schema_version == 1 and old.plugins == {}
    assert old.to_dict() == data
    with pytest.raises(RecordError, match=r"unknown fields \['plugins'\]"):
        RunRecord.from_dict({**data, "plugins": make_record().plugins})


def test_a_schema_2_record_names_its_plugins():
    data = make_record().to_dict()
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert data["plugins"]["method"] == {"name": "mgca", "distribution": "medvlp-bench", "version": "0.1.0"}
    assert RunRecord.from_dict(data).plugins == data["plugins"]


def test_missing_field_is_named():
    data = make_record().to_dict()
    del data["split_hash"]
    with pytest.raises(RecordError, match=r"missing fields \['split_hash'\]"):
        RunRecord.from_dict(data)


def test_undefined_metric_is_null_and_numpy_numbers_become_python_numbers():
    record = make_record()
    data = {**record.to_dict(), "metrics": {"auroc": None, "accuracy": float("nan"), "dice": np.float32(0.5)},
            "n_train": np.int64(7)}
    normalised = RunRecord.from_dict(data)
    assert normalised.metrics == {"auroc": None, "accuracy": None, "dice": 0.5}
    assert type(normalised.metrics["dice"]) is float and type(normalised.n_train) is int
    json.dumps(normalised.to_dict(), allow_nan=False)


def test_details_are_optional_when_reading():
    data = {**make_record().to_dict(), "details": {"split_rule": "70/15/15", "sizes": (1, 2)}}
    assert RunRecord.from_dict(data).details == {"split_rule": "70/15/15", "sizes": [1, 2]}
    del data["details"]
    assert RunRecord.from_dict(data).details == {}


def test_corrupt_json_raises_naming_the_file(tmp_path):
    write_record(make_record(), tmp_path)
    bad = tmp_path / "sub" / "broken.json"
    bad.parent.mkdir()
    bad.write_text('{"schema_version": 1, "method": ')
    with pytest.raises(RecordError, match=re.escape(str(bad))):
        load_records(tmp_path)


def test_load_records_is_recursive_and_skips_temp_and_hidden_files(tmp_path):
    first = make_record(seed=0)
    second = make_record(seed=1)
    write_record(first, tmp_path)
    write_record(second, tmp_path / "grid" / "cell")
    (tmp_path / ".mgca__rsna_cls.json.123.abcd.tmp").write_text('{"torn": ')
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "old.json").write_text("not json")
    assert sorted(record.seed for record in load_records(tmp_path)) == [0, 1]


def test_load_records_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(RecordError, match="no such results folder"):
        load_records(tmp_path / "nowhere")


def test_failed_replace_leaves_the_old_record_and_no_partial_file(tmp_path, monkeypatch):
    old = make_record(auroc=0.8)
    path = write_record(old, tmp_path)
    new = RunRecord(**{**old.to_dict(), "metrics": {"auroc": 0.9}})
    assert record_filename(new) == path.name

    def crash(*args, **kwargs):
        raise OSError("killed between write and rename")

    monkeypatch.setattr(build_once.os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        write_record(new, tmp_path)
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]
    assert read_record(path) == old


def test_failed_fsync_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def crash(descriptor):
        raise OSError("disk gone")

    monkeypatch.setattr(build_once.os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_record(make_record(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rewrite_of_one_key_replaces_the_record(tmp_path):
    old = make_record(auroc=0.8)
    write_record(old, tmp_path)
    new = RunRecord(**{**old.to_dict(), "metrics": {"auroc": 0.9}})
    path = write_record(new, tmp_path)
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]
    assert read_record(path).metrics == {"auroc": 0.9}


def _write_many(args: tuple[str, int]) -> list[str]:
    """Worker: write 10 distinct records and 10 rewrites of one shared key into ``folder``."""
    folder, worker = args
    names = []
    for index in range(10):
        names.append(write_record(make_record(seed=100 * worker + index), folder).name)
        write_record(make_record(seed=-1, auroc=0.5 + 0.01 * worker), folder)
    return names


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_concurrent_writers_never_lose_or_tear_a_record(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        names = [name for batch in pool.map(_write_many, [(str(tmp_path), worker) for worker in range(4)])
                 for name in batch]
    loaded = load_records(tmp_path)
    assert len(names) == len(set(names)) == 40
    assert sorted(record.seed for record in loaded) == [-1] + sorted(
        100 * worker + index for worker in range(4) for index in range(10)
    )
    shared = next(record for record in loaded if record.seed == -1)
    assert shared.metrics["auroc"] in {0.5 + 0.01 * worker for worker in range(4)}
    assert not [entry for entry in tmp_path.iterdir() if entry.name.endswith(".tmp")]


def test_find_record_matches_on_content(tmp_path):
    wanted = make_record(seed=3)
    other = make_record(seed=4)
    write_record(other, tmp_path)
    path = write_record(wanted, tmp_path / "sub")
    assert find_record(tmp_path, wanted.config_key) == path
    renamed = path.with_name("renamed.json")
    os.replace(path, renamed)
    assert find_record(tmp_path, wanted.config_key) == renamed
    decoy = tmp_path / f"x__{wanted.config_key[:12]}.json"
    decoy.write_text(json.dumps(other.to_dict()))
    assert find_record(tmp_path, wanted.config_key) == renamed
    assert find_record(tmp_path, "f" * 64) is None
    assert find_record(tmp_path / "nowhere", wanted.config_key) is None


def test_collect_provenance():
    started = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    provenance = collect_provenance(started, started + timedelta(seconds=90.25), "cpu")
    assert tuple(provenance) == PROVENANCE_KEYS
    assert provenance["started_at"] == "2024-05-01T12:00:00+00:00"
    assert provenance["wall_seconds"] == 90.25
    assert provenance["device"] == "cpu"
    assert provenance["git_sha"] is None or re.fullmatch(r"[0-9a-f]{40,64}", provenance["git_sha"])
    record = make_record()
    assert RunRecord(**{**record.to_dict(), "provenance": provenance}).provenance == provenance
    with pytest.raises(ValueError, match="timezone-aware"):
        collect_provenance(datetime(2024, 5, 1), datetime(2024, 5, 2), "cpu")
