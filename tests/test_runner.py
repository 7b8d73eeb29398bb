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


def test_every_task_sets_only_options_its_protocol_declares(registry):
    from medvlp_bench.protocols.builtin import LINEAR_PROBE_OPTIONS
    from medvlp_bench.protocols.linear_probe import DEFAULT_HPARAMS

    assert LINEAR_PROBE_OPTIONS == tuple(DEFAULT_HPARAMS)
    for name in registry.names("task"):
        task = registry.get("task", name)
        declared = registry.get("protocol", task.protocol).options
        assert declared is not None and set(task.hparams) <= {getattr(o, "name", o) for o in declared}, name
