"""Runner: where data comes from, and weights resolution for methods that pretrain."""

from __future__ import annotations

import pytest

from medvlp_bench.errors import WeightsNotFoundError
from medvlp_bench.registry import load_registry
from medvlp_bench.runner import RunRequest, locate_dataset, run


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_explicit_path_beats_data_root_which_beats_synthetic(registry, tmp_path, monkeypatch):
    rsna = registry.get("dataset", "rsna")
    explicit = RunRequest(method="random", task="rsna_cls", pct=1.0, data_root=tmp_path / "root",
                          dataset_paths={"rsna": tmp_path / "mine"})
    assert locate_dataset(rsna, explicit).folder == tmp_path / "mine"
    rooted = RunRequest(method="random", task="rsna_cls", pct=1.0, data_root=tmp_path / "root")
    location = locate_dataset(rsna, rooted)
    assert location.folder == tmp_path / "root" / "rsna-pneumonia" and location.source == "real"
    monkeypatch.setenv("MEDVLP_DATA_ROOT", str(tmp_path / "env"))
    from_env = RunRequest(method="random", task="rsna_cls", pct=1.0)
    assert locate_dataset(rsna, from_env).folder == tmp_path / "env" / "rsna-pneumonia"


def test_pretraining_method_on_real_data_without_checkpoint_says_how_to_get_weights(registry, tmp_path):
    from medvlp_bench.data.synthetic_store import ensure_synthetic

    real_layout = ensure_synthetic(registry.get("dataset", "rsna"), 0, 0.1)
    request = RunRequest(method="mgca", task="rsna_cls", pct=1.0, data_root=tmp_path,
                         dataset_paths={"rsna": real_layout})
    with pytest.raises(WeightsNotFoundError, match="--checkpoint PATH.*medvlp-bench pretrain --method mgca"):
        run(registry, request)


def test_missing_checkpoint_file_is_reported(registry, tmp_path):
    from medvlp_bench.errors import MedvlpError

    request = RunRequest(method="mgca", task="rsna_cls", pct=1.0, synthetic=True, synthetic_scale=0.1,
                         checkpoint=tmp_path / "nope.ckpt")
    with pytest.raises(MedvlpError, match="checkpoint not found"):
        run(registry, request)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pretrain_epochs": 0}, "at least 1"),
        ({"method": "random", "pretrain_epochs": 12}, "'random' has no pretraining"),
        ({"pretrain_epochs": 12, "checkpoint": "model.ckpt"}, "exclude each other"),
        ({"pretrain_nodes": 0}, "--pretrain-nodes and --pretrain-devices must be at least 1"),
        ({"method": "random", "pretrain_devices": 2}, "'random' has no pretraining"),
        ({"pretrain_devices": 2, "checkpoint": "model.ckpt"}, "exclude each other"),
    ],
)
def test_pretrain_epochs_is_checked_before_anything_runs(registry, tmp_path, changes, message):
    from medvlp_bench.errors import MedvlpError

    fields = {"method": "mgca", "task": "rsna_cls", "pct": 1.0, "synthetic": True, "synthetic_scale": 0.1,
              "out_dir": tmp_path, **changes}
    if "checkpoint" in changes:
        fields["checkpoint"] = tmp_path / changes["checkpoint"]
        fields["checkpoint"].write_bytes(b"")
    with pytest.raises(MedvlpError, match=message):
        run(registry, RunRequest(**fields))
    assert not list(tmp_path.glob("*.json"))


def test_pretrain_epochs_names_another_stored_model(registry):
    from medvlp_bench.data.synthetic_store import ensure_synthetic
    from medvlp_bench.pretraining.service import plan_for_run, synthetic_descriptor

    corpus = ensure_synthetic(registry.get("dataset", "mimic_cxr"), 0, 0.1)
    plans = [
        plan_for_run(registry, registry.get("method", "mgca"), data_source="synthetic", corpus_folder=corpus,
                     synthetic=synthetic_descriptor(0, 0.1), image_encoder="resnet18_64", max_epochs=epochs)
        for epochs in (None, 12)
    ]
    assert [plan.config["max_epochs"] for plan in plans] == [4, 12]
    assert plans[0].key != plans[1].key


def test_a_misspelt_protocol_option_is_refused_with_the_closest_names(registry, tmp_path):
    from medvlp_bench.errors import MedvlpError

    request = RunRequest(method="random", task="rsna_det", pct=1.0, synthetic=True, synthetic_scale=0.1,
                         out_dir=tmp_path, hparams={"head_wdth": 64})
    with pytest.raises(MedvlpError, match=r"head_wdth: unknown option of protocol 'detection' \(did you mean "
                                          r"head_width\?\); its options: .*nms_threshold"):
        run(registry, request)
    assert not list(tmp_path.glob("*.json"))


def test_every_task_sets_only_options_its_protocol_declares_and_only_where_it_differs(registry):
    for name in registry.names("task"):
        task = registry.get("task", name)
        declared = {option.name: option.default for option in registry.get("protocol", task.protocol).options}
        assert set(task.hparams) <= set(declared), name
        assert all(value != declared[key] for key, value in task.hparams.items()), name


def _counting(registry, task_name):
    """A copy of ``registry`` whose task ``task_name`` counts the calls of its ``load_splits``."""
    import dataclasses

    from medvlp_bench.registry import Registered, Registry

    calls = []
    task = registry.get("task", task_name)

    def load_splits(folder):
        calls.append(folder)
        return task.load_splits(folder)

    copy = Registry({kind: dict(entries) for kind, entries in registry.entries.items()}, list(registry.problems))
    origin = registry.entries["task"][task_name].origin
    copy.entries["task"][task_name] = Registered(dataclasses.replace(task, load_splits=load_splits), origin)
    return copy, calls


def test_plan_resolves_a_run_without_reading_images_and_finds_its_record_after_execution(registry, tmp_path,
                                                                                          monkeypatch):
    import PIL.Image
    import pydicom
    import torch

    from medvlp_bench.runner import execute_plan, plan_run

    counting, calls = _counting(registry, "rsna_cls")
    request = RunRequest(method="random", task="rsna_cls", pct=0.5, synthetic=True, synthetic_scale=0.1,
                         out_dir=tmp_path)
    plan = plan_run(counting, request)
    assert (plan.method.name, plan.task.name, plan.protocol.name, plan.dataset.name) == (
        "random", "rsna_cls", "linear_probe", "rsna")
    assert plan.encoder == "resnet18_64" and plan.data_source == "synthetic" and plan.pretrain is None
    assert plan.record_path is None and plan.config["pct"] == 0.5 and len(plan.key) == 64
    outcome = execute_plan(counting, plan)
    assert not outcome.skipped and outcome.record.config_key == plan.key

    def refuse(*args, **kwargs):
        raise AssertionError("planning read an image or loaded weights")

    monkeypatch.setattr(PIL.Image, "open", refuse)
    monkeypatch.setattr(pydicom, "dcmread", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    again = plan_run(counting, request)
    assert again.key == plan.key and again.record_path == outcome.path
    other = plan_run(counting, RunRequest(**{**request.__dict__, "pct": 1.0}))
    assert other.key != plan.key and other.record_path is None
    assert len(calls) == 1  # the task's tables are read once per process and folder


def test_planned_pretraining_names_the_model_store_folder_and_is_part_of_the_key(registry, tmp_path):
    from medvlp_bench.runner import plan_run

    request = RunRequest(method="mgca", task="rsna_cls", pct=1.0, synthetic=True, synthetic_scale=0.1,
                         out_dir=tmp_path)
    plan = plan_run(registry, request)
    assert plan.pretrain is not None and plan.pretrain.request.method == "mgca"
    assert plan.pretrain.out_dir.name == plan.pretrain.key[:16]
    assert plan.config["weights"]["pretrain_key"] == plan.pretrain.key
    longer = plan_run(registry, RunRequest(**{**request.__dict__, "pretrain_epochs": 7}))
    assert longer.pretrain.config["max_epochs"] == 7 and longer.key != plan.key



def _replaced(registry, kind, name, origin=None, **changes):
    """A copy of ``registry`` with the spec ``kind``/``name`` changed by ``changes`` (and its origin replaced)."""
    import dataclasses

    from medvlp_bench.registry import Registered, Registry

    copy = Registry({kind_: dict(entries) for kind_, entries in registry.entries.items()}, list(registry.problems))
    entry = registry.entries[kind][name]
    copy.entries[kind][name] = Registered(dataclasses.replace(entry.spec, **changes), origin or entry.origin)
    return copy


def test_a_changed_default_protocol_version_or_plugin_version_never_reuses_a_record(registry, tmp_path):
    from medvlp_bench.registry import Origin
    from medvlp_bench.runner import plan_run
    from medvlp_bench.specs import OptionSpec

    declared = tuple(OptionSpec(name, value, name) for name, value in
                     {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "max_epochs": 10, "patience": 3}.items())
    with_defaults = _replaced(_replaced(registry, "protocol", "linear_probe", options=declared, version="1"),
                              "task", "covidx_cls", hparams={})  # a task that keeps the protocol's defaults
    request = RunRequest(method="random", task="covidx_cls", pct=0.1, synthetic=True, synthetic_scale=0.1,
                         out_dir=tmp_path)
    outcome = run(with_defaults, request)
    record = outcome.record
    assert record.plugins["method"] == {"name": "random", "distribution": "medvlp-bench",
                                        "version": record.plugins["protocol"]["version"]}
    assert set(record.plugins) == {"method", "task", "dataset", "protocol", "encoder"}
    assert record.config["protocol_version"] == "1" and record.config["plugins"] == record.plugins
    assert record.config["hparams"] == {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "max_epochs": 10,
                                        "patience": 3}
    assert run(with_defaults, request).skipped

    changed_default = tuple(OptionSpec(o.name, 4 if o.name == "patience" else o.default, o.help) for o in declared)
    variants = {
        "protocol default": _replaced(with_defaults, "protocol", "linear_probe", options=changed_default),
        "protocol version": _replaced(with_defaults, "protocol", "linear_probe", version="2"),
        "method package": _replaced(with_defaults, "method", "random", Origin("medvlp-random", "2.0", "random")),
        "encoder package": _replaced(with_defaults, "encoder", "resnet18_64", Origin("my-encoders", "0.1", "e")),
    }
    for what, variant in variants.items():
        plan = plan_run(variant, request)
        assert plan.record_path is None and plan.key != record.config_key, what
    upgraded = run(variants["method package"], request)
    assert not upgraded.skipped
    assert upgraded.record.plugins["method"] == {"name": "random", "distribution": "medvlp-random", "version": "2.0"}


def test_method_options_are_validated_first_and_enter_pretraining_and_the_key(registry, tmp_path):
    from medvlp_bench.errors import MedvlpError
    from medvlp_bench.runner import plan_run

    request = RunRequest(method="convirt", task="rsna_cls", pct=1.0, synthetic=True, synthetic_scale=0.1,
                         out_dir=tmp_path, method_options={"temprature": 0.5})
    with pytest.raises(MedvlpError, match=r"--method-option temprature: unknown option of method 'convirt' \(did "
                                          r"you mean temperature\?\)"):
        plan_run(registry, request)
    with pytest.raises(MedvlpError, match="--method-option temperature: method 'convirt' option temperature must "
                                          "be a number"):
        plan_run(registry, RunRequest(**{**request.__dict__, "method_options": {"temperature": "low"}}))
    with pytest.raises(MedvlpError, match="unknown option of method 'random'; its options: none"):
        plan_run(registry, RunRequest(**{**request.__dict__, "method": "random", "method_options": {"x": 1}}))
    default = plan_run(registry, RunRequest(**{**request.__dict__, "method_options": {}}))
    warmer = plan_run(registry, RunRequest(**{**request.__dict__, "method_options": {"temperature": 0.5}}))
    assert default.pretrain.config["options"]["temperature"] == 0.07
    assert warmer.pretrain.config["options"]["temperature"] == 0.5
    assert warmer.config["method_options"]["temperature"] == 0.5
    assert warmer.pretrain.key != default.pretrain.key and warmer.key != default.key
    assert warmer.pretrain.config["options"]["learning_rate"] == 1e-3  # the synthetic profile still applies


def test_a_checkpoint_is_hashed_once_per_process_until_it_changes(tmp_path, monkeypatch):
    import hashlib
    import os

    from medvlp_bench import runner

    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"weights v1")
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *args, **kwargs: (opened.append(str(path)),
                                                                          real_open(path, *args, **kwargs))[1])
    first, again = runner.file_sha256(checkpoint), runner.file_sha256(checkpoint)
    assert first == again == hashlib.sha256(b"weights v1").hexdigest() and len(opened) == 1
    checkpoint.write_bytes(b"weights v2, longer")
    os.utime(checkpoint, ns=(1, 1))
    assert runner.file_sha256(checkpoint) == hashlib.sha256(b"weights v2, longer").hexdigest() and len(opened) == 2
