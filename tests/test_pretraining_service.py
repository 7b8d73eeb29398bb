"""Pretraining requests: the config that identifies a model (the method's profile, its declared options, overrides),
option validation, the weights plan of a run on real data without a checkpoint, resuming a killed pretraining, which
pretrainings a run may train itself, and the lock that only the first process of a DDP pretraining takes."""

from __future__ import annotations

import json
import threading

import lightning as L
import pandas as pd
import pytest
import torch

from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.pretraining.fit import fit_pretraining
from medvlp_bench.pretraining.model_store import LAST_CHECKPOINT
from medvlp_bench.cli import build_parser, pretrain_request
from medvlp_bench.data.build_once import exclusive_lock
from medvlp_bench.pretraining.ranks import RANK_VARIABLES
from medvlp_bench.pretraining.service import (
    PretrainRequest,
    checkpoint_for_run,
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


def _tiny_registry(kill_after_epochs=None, pretrain=None) -> Registry:
    """A registry with a method whose pretraining is :class:`EpochCounter` on a 2-row corpus (or ``pretrain``);
    with ``kill_after_epochs`` the run stops after that many epochs without writing the final model (a killed run).
    Its profiles: ``synthetic`` and ``real`` alike (encoder ``tiny``, no text encoder, 3 epochs, batch 2)."""

    def counting(context):
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
    image_only = {source: PretrainingProfile("tiny", None, max_epochs=3, batch_size=2)
                  for source in ("synthetic", "real")}
    registry = Registry()
    origin = Origin("tiny-plugins", "1.0", "tests")
    registry.add("method", method(image_only, (), pretrain or counting), origin)
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


def _recording_registry(calls: list) -> Registry:
    """The tiny registry with a pretraining that only records its call and returns its final checkpoint path."""

    def pretrain(context):
        calls.append(context.trainer)
        return context.out_dir / "model.ckpt"

    return _tiny_registry(pretrain=pretrain)


@pytest.mark.parametrize("environment", [
    {"SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NTASKS": "2"},  # srun: task 1 of a DDP job
    {"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NTASKS": "4"},  # srun: first task of the second node
    {"LOCAL_RANK": "1", "NODE_RANK": "0"},  # started by Lightning's launcher
    {"RANK": "3"},  # torchrun
])
def test_other_processes_of_a_ddp_pretraining_train_without_the_lock_or_writing_the_config(
        tmp_path, monkeypatch, environment):
    monkeypatch.setenv("MEDVLP_HOME", str(tmp_path))
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    calls: list = []
    registry = _recording_registry(calls)
    plan = plan_pretraining(registry, PretrainRequest(method="fake", corpus_folder=tmp_path / "pairs", devices=2,
                                                      strategy="ddp", resume=True))
    with exclusive_lock(plan.out_dir.parent / f".{plan.out_dir.name}.lock"):  # as rank 0 holds it
        assert execute(registry, plan) == plan.out_dir / "model.ckpt"
    assert len(calls) == 1 and calls[0]["devices"] == 2 and calls[0]["strategy"] == "ddp"
    assert not (plan.out_dir / "config.json").exists()


def test_the_first_process_waits_for_the_lock_and_writes_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVLP_HOME", str(tmp_path))
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "0")
    calls: list = []
    registry = _recording_registry(calls)
    plan = plan_pretraining(registry, PretrainRequest(method="fake", corpus_folder=tmp_path / "pairs", devices=2,
                                                      resume=True))
    worker = threading.Thread(target=execute, args=(registry, plan), daemon=True)
    with exclusive_lock(plan.out_dir.parent / f".{plan.out_dir.name}.lock"):
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and calls == []  # waits for the holder
    worker.join(30)
    assert not worker.is_alive() and len(calls) == 1
    assert json.loads((plan.out_dir / "config.json").read_text())["global_batch_size"] == 2 * 2


@pytest.mark.parametrize("source, devices, why", [
    ("real", 1, "on real data"),
    ("synthetic", 2, "with 4 processes"),
])
def test_a_run_only_looks_up_real_data_and_multi_process_pretrainings(tmp_path, monkeypatch, source, devices, why):
    """A run trains a single-process synthetic pretraining on first use, never one on real data or of several
    processes: it finds that one in the model store, or says which pretrain command makes it (that command plans
    the same key)."""
    monkeypatch.setenv("MEDVLP_HOME", str(tmp_path))
    calls: list = []
    registry = _recording_registry(calls)
    spec = registry.get("method", "fake")
    plan = plan_for_run(registry, spec, data_source=source, corpus_folder=tmp_path / "pairs",
                        synthetic={"seed": 0} if source == "synthetic" else None, image_encoder="tiny",
                        max_epochs=2, options={}, num_nodes=2, devices=devices)
    assert plan.config["data_source"] == source and plan.config["global_batch_size"] == 2 * 2 * devices
    with pytest.raises(WeightsNotFoundError, match=f"{why} .*never trains it itself") as error:
        checkpoint_for_run(registry, plan)
    assert calls == []
    command = str(error.value).split(": ", 2)[-1].split()
    assert command[:2] == ["medvlp-bench", "pretrain"] and "--epochs" in command
    assert command[command.index("--num-nodes"):command.index("--strategy")] == ["--num-nodes", "2", "--devices",
                                                                                 str(devices)]
    if source == "real":  # the synthetic command would generate the synthetic default; the real one is checked
        args = build_parser().parse_args(command[1:])
        assert plan_pretraining(registry, pretrain_request(args, registry)).key == plan.key
    plan.out_dir.mkdir(parents=True)
    (plan.out_dir / "model.ckpt").write_bytes(b"stored")
    assert checkpoint_for_run(registry, plan) == plan.out_dir / "model.ckpt" and calls == []


def test_a_run_trains_a_single_process_synthetic_pretraining_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVLP_HOME", str(tmp_path))
    calls: list = []
    registry = _recording_registry(calls)
    plan = plan_for_run(registry, registry.get("method", "fake"), data_source="synthetic",
                        corpus_folder=tmp_path / "pairs", synthetic={"seed": 0}, image_encoder="tiny")
    assert checkpoint_for_run(registry, plan) == plan.out_dir / "model.ckpt" and len(calls) == 1
