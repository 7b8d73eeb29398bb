"""Pretraining requests: the config that identifies a model (profile defaults, method options, overrides), and
the weights plan of a run on real data without a checkpoint."""

from __future__ import annotations

import pytest

from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.pretraining.service import (
    REAL_PRETRAINING,
    SYNTHETIC_PRETRAINING,
    PretrainRequest,
    plan_for_run,
    resolve_config,
)
from medvlp_bench.specs import DatasetSpec, MethodSpec


def method(options: dict) -> MethodSpec:
    return MethodSpec(name="fake", description="", load_image_encoder=lambda context: None,
                      pretrain=lambda context: None, default_text_encoder={"synthetic": "tiny_bert"},
                      default_options=options)


CORPUS = DatasetSpec(name="mimic_cxr", title="", citation="", url="", folder="x", check=lambda folder: [])


def test_synthetic_profile_options_apply_only_to_methods_that_have_them():
    config = resolve_config(method({"learning_rate": 2e-5, "temperature": 0.07}), CORPUS,
                            PretrainRequest(method="fake"), corpus_hash="h")
    assert config["options"]["learning_rate"] == SYNTHETIC_PRETRAINING["options"]["learning_rate"]
    assert config["options"]["temperature"] == 0.07
    assert set(config["options"]) == {"learning_rate", "temperature"}  # report_pooling etc. not added
    assert config["max_epochs"] == SYNTHETIC_PRETRAINING["max_epochs"]
    assert config["image_encoder"] == "resnet18_64" and config["text_encoder"] == "tiny_bert"


def test_request_overrides_profile_and_global_batch_counts_every_process():
    request = PretrainRequest(method="fake", max_epochs=2, batch_size=8, devices=2, num_nodes=3,
                              options={"learning_rate": 0.5})
    config = resolve_config(method({"learning_rate": 2e-5}), CORPUS, request, corpus_hash="h")
    assert config["options"] == {"learning_rate": 0.5} and config["max_epochs"] == 2
    assert config["batch_size_per_device"] == 8 and config["global_batch_size"] == 48


def test_real_data_uses_the_paper_profile_and_needs_a_text_encoder():
    request = PretrainRequest(method="fake", data_source="real")
    with pytest.raises(MedvlpError, match="names no default text encoder"):
        resolve_config(method({}), CORPUS, request, corpus_hash="h")
    config = resolve_config(method({"learning_rate": 2e-5}), CORPUS,
                            PretrainRequest(method="fake", data_source="real", text_encoder="bio_clinicalbert"),
                            corpus_hash="h")
    assert config["image_encoder"] == "resnet50" and config["options"] == {"learning_rate": 2e-5}
    assert config["max_epochs"] == REAL_PRETRAINING["max_epochs"] and config["synthetic"] is None


def test_a_run_on_real_data_without_checkpoint_says_how_to_get_weights():
    with pytest.raises(WeightsNotFoundError, match="--checkpoint PATH.*pretrain --method fake"):
        plan_for_run(None, method({}), data_source="real", corpus_folder=None, synthetic=None,
                     image_encoder="resnet50")
