"""Pretraining requests: the config that identifies a model (the method's profile, its declared options, overrides),
option validation, the weights plan of a run on real data without a checkpoint, and resuming a killed pretraining."""

from __future__ import annotations

import json

import lightning as L
import pandas as pd
import pytest
import torch

from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.pretraining.fit import fit_pretraining
from medvlp_bench.pretraining.model_store import LAST_CHECKPOINT
from medvlp_bench.pretraining.service import (
    PretrainRequest,
    execute,
    plan_for_run,
    plan_pretraining,
    resolve_config,
)
from medvlp_bench.registry import Origin, Registry
from medvlp_bench.specs import DatasetSpec, MethodSpec, OptionSpec, PretrainingProfile, SplitTables

OPTIONS = (OptionSpec("learning_rate", 2e-5, "peak learning rate", float),
           OptionSpec("temperature", 0.07, "InfoNCE temperature", float))
PROFILES = {
    "synthetic": PretrainingProfile("resnet18_64", "tiny_bert", max_epochs=4, batch_size=64,
                                    options={"learning_rate": 1e-3}),
    "real": PretrainingProfile("resnet50", "bio_clinicalbert", max_epochs=50, batch_size=72),
}


def method(profiles=PROFILES, options=OPTIONS, pretrain=lambda context: None) -> MethodSpec:
    return MethodSpec(name="fake", description="", load_image_encoder=lambda context: None, pretrain=pretrain,
                      corpus="pairs", pretraining_profiles=profiles, options=options)


CORPUS = DatasetSpec(name="pairs", title="", citation="", url="", folder="x", check=lambda folder: [])


def test_the_synthetic_profile_sets_encoders_epochs_and_its_option_overrides():
    config = resolve_config(method(), CORPUS, PretrainRequest(method="fake"), corpus_hash="h")
    assert config["options"] == {"learning_rate": 1e-3, "temperature": 0.07}
    assert config["max_epochs"] == 4 and config["batch_size_per_device"] == 64
    assert config["image_encoder"] == "resnet18_64" and config["text_encoder"] == "tiny_bert"


def test_request_overrides_profile_and_global_batch_counts_every_process():
    request = PretrainRequest(method="fake", max_epochs=2, batch_size=8, devices=2, num_nodes=3,
                              options={"learning_rate": 0.5})
    config = resolve_config(method(), CORPUS, request, corpus_hash="h")
    assert config["options"] == {"learning_rate": 0.5, "temperature": 0.07} and config["max_epochs"] == 2
    assert config["batch_size_per_device"] == 8 and config["global_batch_size"] == 48


def test_real_data_uses_the_real_profile():
    config = resolve_config(method(), CORPUS, PretrainRequest(method="fake", data_source="real"), corpus_hash="h")
    assert config["image_encoder"] == "resnet50" and config["text_encoder"] == "bio_clinicalbert"
    assert config["options"] == {"learning_rate": 2e-5, "temperature": 0.07}
    assert config["max_epochs"] == 50 and config["synthetic"] is None


def test_an_image_only_profile_needs_no_text_encoder():
    image_only = {"synthetic": PretrainingProfile("resnet18_64", None, max_epochs=1, batch_size=4)}
    config = resolve_config(method(image_only), CORPUS, PretrainRequest(method="fake"), corpus_hash="h")
    assert config["text_encoder"] is None


def test_a_method_without_a_profile_for_the_data_source_names_the_options_that_exist():
    from medvlp_bench.cli import build_parser

    with pytest.raises(MedvlpError, match="no pretraining profile for real data") as error:
        resolve_config(method({}), CORPUS, PretrainRequest(method="fake", data_source="real"), corpus_hash="h")
    named = [word for word in str(error.value).split() if word.startswith("--")]
    pretrain_options = build_parser()._subparsers._group_actions[0].choices["pretrain"]._option_string_actions
    assert named and all(option in pretrain_options for option in named)
    explicit = PretrainRequest(method="fake", data_source="real", image_encoder="resnet50", text_encoder="t",
                               max_epochs=3, batch_size=2)
    assert resolve_config(method({}), CORPUS, explicit, corpus_hash="h")["max_epochs"] == 3


@pytest.mark.parametrize(("options", "message"), [
    ({"temprature": 0.5}, r"--option temprature: unknown option of method 'fake' \(did you mean temperature\?\)"),
    ({"temperature": "warm"}, r"--option temperature: method 'fake' option temperature must be a number"),
])
def test_misspelt_or_mistyped_options_are_refused(options, message):
    with pytest.raises(MedvlpError, match=message):
        resolve_config(method(), CORPUS, PretrainRequest(method="fake", options=options), corpus_hash="h")


def test_a_run_on_real_data_without_checkpoint_says_how_to_get_weights():
    with pytest.raises(WeightsNotFoundError, match="--checkpoint PATH.*pretrain --method fake"):
        plan_for_run(None, method(), data_source="real", corpus_folder=None, synthetic=None,
                     image_encoder="resnet50")


class EpochCounter(L.LightningModule):
    """One weight fitted to zero; each epoch it trains is appended to the file ``epochs.txt`` in its folder."""

    def __init__(self, log_file):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.log_file = log_file

    def training_step(self, batch, batch_index):
        return (self.weight * batch[0]).pow(2).mean()

    def on_train_epoch_start(self):
        with open(self.log_file, "a") as handle:
            handle.write(f"{self.current_epoch}\n")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TinyData(L.LightningDataModule):
    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 1)), batch_size=2)


def _tiny_registry(kill_after_epochs=None) -> Registry:
    """A registry with a method whose pretraining is :class:`EpochCounter` on a 2-row corpus; with
    ``kill_after_epochs`` the run stops after that many epochs without writing the final model (a killed run)."""

    def pretrain(context):
        module = EpochCounter(context.out_dir / "epochs.txt")
        if kill_after_epochs is None:
            return fit_pretraining(module, TinyData(), out_dir=context.out_dir, trainer_settings=context.trainer,
                                   resume=context.resume, seed=context.seed)
        fit_pretraining(module, TinyData(), out_dir=context.out_dir,
                        trainer_settings={**context.trainer, "max_epochs": kill_after_epochs},
                        resume=context.resume, seed=context.seed)
        (context.out_dir / "model.ckpt").unlink()
        raise KeyboardInterrupt

    table = pd.DataFrame({"sample_id": ["a", "b"], "image_path": ["a.png", "b.png"], "source_file": "x",
                          "source_row": [2, 3], "text": ["one", "two"]})
    corpus = DatasetSpec(name="pairs", title="", citation="", url="", folder="pairs", check=lambda folder: [],
                         load_corpus=lambda folder: SplitTables(table, table, table.iloc[:0]))
    image_only = {"synthetic": PretrainingProfile("tiny", None, max_epochs=3, batch_size=2)}
    registry = Registry()
    origin = Origin("tiny-plugins", "1.0", "tests")
    registry.add("method", method(image_only, (), pretrain), origin)
    registry.add("dataset", corpus, origin)
    from medvlp_bench.specs import ImageEncoderSpec

    registry.add("encoder", ImageEncoderSpec("tiny", "", build=lambda: None), origin)
    return registry


def test_an_interrupted_pretraining_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVLP_HOME", str(tmp_path))
    request = PretrainRequest(method="fake", corpus_folder=tmp_path / "pairs", accelerator="cpu")
    killed = plan_pretraining(_tiny_registry(kill_after_epochs=1), request)
    with pytest.raises(KeyboardInterrupt):
        execute(_tiny_registry(kill_after_epochs=1), killed)
    assert (killed.out_dir / LAST_CHECKPOINT).is_file() and not (killed.out_dir / "model.ckpt").exists()

    plan = plan_pretraining(_tiny_registry(), request)
    assert plan.out_dir == killed.out_dir
    final = execute(_tiny_registry(), plan)
    assert (plan.out_dir / "epochs.txt").read_text().split() == ["0", "1", "2"]  # epoch 0 once, then 1 and 2
    assert torch.load(final, weights_only=True)["epoch"] == 3  # epochs finished
    assert json.loads((plan.out_dir / "config.json").read_text())["plugins"]["method"] == {
        "name": "fake", "distribution": "tiny-plugins", "version": "1.0"}
