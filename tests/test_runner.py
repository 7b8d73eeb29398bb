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
