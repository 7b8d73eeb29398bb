"""Tests of safe checkpoint loading and of importing released checkpoint layouts into our encoders.

Checkpoints are built in each released layout (the MGCA, GLoRIA and ConVIRT releases: key prefixes
``img_encoder_q.model.``, ``gloria.img_encoder.model.``, ``img_encoder.model.``) from a ResNet-18 wrapped like our
encoder (the releases are ResNet-50; the key layout is the same), then loaded back through the public functions,
with the layouts the method plugins declare.
"""

from __future__ import annotations

import argparse
import copy
import os
import pathlib
import pickle
import shlex
from collections import OrderedDict
from fractions import Fraction

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from medvlp_bench.checkpoints import (
    PLAIN_LAYOUT,
    CheckpointError,
    MetadataStandIn,
    UntrustedCheckpointError,
    detect_layout,
    extract_state_dict,
    import_encoder_weights,
    load_encoder_checkpoint,
    safe_load,
)
from medvlp_bench.errors import MedvlpError
from medvlp_bench.registry import load_registry
from medvlp_bench.specs import CheckpointLayout
from medvlp_bench_plugins.encoders.torchvision_resnet import ResNetEncoder

#: the layouts the vision-language method plugins declare, in the order MGCA, GLoRIA, ConVIRT (no repeats)
RELEASED = tuple(dict.fromkeys(
    layout for name in ("mgca", "gloria", "convirt") for layout in load_registry().get("method", name).checkpoint_layouts
))


def layout_named(name: str) -> CheckpointLayout:
    return next(layout for layout in RELEASED if layout.name == name)


@pytest.fixture(scope="module")
def blank() -> ResNetEncoder:
    """A freshly initialised encoder, never written to; tests import into copies of it (copying beats building)."""
    return ResNetEncoder("resnet18", 128)


@pytest.fixture
def new_encoder(blank):
    """Make a fresh encoder to import into."""
    return lambda: copy.deepcopy(blank)


@pytest.fixture(scope="module")
def source() -> ResNetEncoder:
    """A 'pretrained' encoder: random weights and non-default BatchNorm statistics, so every tensor is distinctive."""
    encoder = ResNetEncoder("resnet18", 128)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, buffer in encoder.named_buffers():
            if name.endswith("num_batches_tracked"):
                buffer.fill_(1234)
            else:
                buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
    return encoder


def _backbone(source: ResNetEncoder, prefix: str) -> OrderedDict:
    """The source encoder's backbone tensors under a checkpoint prefix (``model.`` swapped for ``prefix``)."""
    return OrderedDict((prefix + key[len("model."):], value.clone()) for key, value in source.state_dict().items())


def _adamw_state() -> dict:
    """A real AdamW state after one step, as Lightning stores under ``optimizer_states``."""
    parameter = torch.nn.Parameter(torch.randn(4))
    optimizer = torch.optim.AdamW([parameter], lr=2e-5, weight_decay=0.05)
    parameter.sum().backward()
    optimizer.step()
    return optimizer.state_dict()


def _lightning_159(state_dict: dict, hyper_parameters: dict) -> dict:
    """A checkpoint as pytorch-lightning 1.5.9 writes it (no ``loops``: those were fault-tolerant training only)."""
    return {
        "epoch": 12,
        "global_step": 4212,
        "pytorch-lightning_version": "1.5.9",
        "state_dict": state_dict,
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
            "'train_time_interval': None, 'save_on_train_epoch_end': True}": {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(1.873),
                "best_model_path": "/home/user/ckpts/MGCA/2022_05_01_12_00_00/epoch=12-step=4212.ckpt",
                "current_score": torch.tensor(1.873),
                "dirpath": "/home/user/ckpts/MGCA/2022_05_01_12_00_00",
                "best_k_models": {"/home/user/ckpts/epoch=12-step=4212.ckpt": torch.tensor(1.873)},
                "kth_best_model_path": "/home/user/ckpts/epoch=10-step=3564.ckpt",
                "kth_value": torch.tensor(1.901),
                "last_model_path": "/home/user/ckpts/last.ckpt",
            },
            "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}": {
                "wait_count": 0,
                "stopped_epoch": 0,
                "best_score": torch.tensor(1.873),
                "patience": 5,
            },
        },
        "optimizer_states": [_adamw_state()],
        "lr_schedulers": [
            {
                "first_cycle_steps": 16200,
                "cycle_mult": 1.0,
                "base_max_lr": 2e-5,
                "max_lr": 2e-5,
                "min_lr": 1e-8,
                "warmup_steps": 6480,
                "gamma": 1.0,
                "cur_cycle_steps": 16200,
                "cycle": 0,
                "step_in_cycle": 4212,
                "base_lrs": [1e-8],
                "last_epoch": 4212,
                "_step_count": 4213,
                "verbose": False,
                "_get_lr_called_within_step": False,
                "_last_lr": [1.3e-5],
            }
        ],
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters,
    }


def _hyper_parameters() -> dict:
    """MGCA's: its argparse values passed as keyword arguments, Trainer flags included (plain values only)."""
    return {
        "img_encoder": "resnet_50",
        "freeze_bert": False,
        "emb_dim": 128,
        "softmax_temperature": 0.07,
        "learning_rate": 2e-5,
        "weight_decay": 0.05,
        "batch_size": 72,
        "num_prototypes": 500,
        "lambda_1": 1.0,
        "lambda_2": 1.0,
        "lambda_3": 1.0,
        "seed": 42,
        "gpus": 2,
        "strategy": "ddp",
        "max_epochs": 50,
        "precision": 32,
        "deterministic": True,
        "data_pct": 1.0,
        "default_root_dir": None,
    }


def _mgca(source: ResNetEncoder) -> dict:
    state = _backbone(source, "img_encoder_q.model.")
    state.update(
        {
            "img_encoder_q.global_embed.head.0.weight": torch.randn(16, 512),
            "img_encoder_q.global_embed.head.1.running_mean": torch.randn(16),
            "img_encoder_q.local_embed.head.0.weight": torch.randn(16, 256, 1),
            "text_encoder_q.model.embeddings.word_embeddings.weight": torch.randn(30, 8),
            "text_encoder_q.model.embeddings.position_ids": torch.arange(112).unsqueeze(0),
            "text_encoder_q.model.encoder.layer.0.crossattention.self.query.weight": torch.randn(8, 8),
            "prototype_layer.weight": torch.randn(500, 128),
        }
    )
    return _lightning_159(state, _hyper_parameters())


def _convirt(source: ResNetEncoder) -> dict:
    state = _backbone(source, "img_encoder.model.")
    state.update(
        {
            "img_encoder.global_embed.head.0.weight": torch.randn(16, 512),
            "text_encoder.model.embeddings.word_embeddings.weight": torch.randn(30, 8),
        }
    )
    return _lightning_159(state, {**_hyper_parameters(), "img_encoder": "resnet_50"})


def _gloria(source: ResNetEncoder) -> dict:
    state = _backbone(source, "gloria.img_encoder.model.")
    state.update(
        {
            "gloria.img_encoder.global_embedder.weight": torch.randn(16, 512),
            "gloria.img_encoder.local_embedder.weight": torch.randn(16, 256, 1, 1),
            "gloria.text_encoder.model.embeddings.word_embeddings.weight": torch.randn(30, 8),
            "gloria.text_encoder.model.embeddings.position_ids": torch.arange(512).unsqueeze(0),
        }
    )
    return {
        "epoch": 15,
        "global_step": 9000,
        "pytorch-lightning_version": "1.1.4",
        "state_dict": state,
        "hyper_parameters": {"model": {"vision": {"model_name": "resnet_50"}}, "train": {"batch_size": 48}},
        "optimizer_states": [_adamw_state()],
        "lr_schedulers": [],
    }


def _torchvision(source: ResNetEncoder) -> OrderedDict:
    state = _backbone(source, "")
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.randn(1000)
    return state


CLASSIFIER = ("fc.weight", "fc.bias")
LAYOUT_CASES = [
    # builder, file name, saver, expected prefix, expected layout, expected ignored keys
    pytest.param(_mgca, "mgca.ckpt", torch.save, "img_encoder_q.model.", "mgca", (), id="mgca"),
    pytest.param(_gloria, "gloria.ckpt", torch.save, "gloria.img_encoder.model.", "gloria", (), id="gloria"),
    pytest.param(_convirt, "convirt.ckpt", torch.save, "img_encoder.model.", "convirt", (), id="convirt"),
    pytest.param(_torchvision, "r.pth", torch.save, "", "torchvision", CLASSIFIER, id="torchvision"),
    pytest.param(_torchvision, "r.safetensors", save_file, "", "torchvision", CLASSIFIER, id="safetensors"),
]


def _write(tmp_path, source, builder, name, saver):
    path = tmp_path / name
    saver(builder(source), str(path))
    return path


def _assert_same_weights(encoder: ResNetEncoder, source: ResNetEncoder) -> None:
    imported = encoder.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(imported[key], value), key


@pytest.mark.parametrize("builder,name,saver,prefix,layout,ignored", LAYOUT_CASES)
def test_each_released_layout_imports_exactly(
    tmp_path, source, new_encoder, builder, name, saver, prefix, layout, ignored
):
    path = _write(tmp_path, source, builder, name, saver)
    encoder = new_encoder()
    assert not torch.equal(encoder.state_dict()["model.conv1.weight"], source.state_dict()["model.conv1.weight"])

    report = load_encoder_checkpoint(encoder, path, layouts=RELEASED)

    _assert_same_weights(encoder, source)
    assert (report.prefix, report.layout) == (prefix, layout)
    assert report.ok and report.missing == () and report.unexpected == () and report.shape_mismatch == ()
    assert report.tolerated == ()
    assert set(report.ignored) == set(ignored)
    assert set(report.matched) == set(source.state_dict())
    assert report.source == str(path)
    assert f"imported {len(source.state_dict())} of {len(source.state_dict())}" in report.summary()

    state = extract_state_dict(safe_load(path), source=path)
    assert detect_layout(state, encoder, RELEASED) == layout
    encoder = new_encoder()
    named = import_encoder_weights(encoder, state, layouts=[layout_named(layout)], source=path, strict=True)
    assert named.prefix == prefix
    _assert_same_weights(encoder, source)


def test_lightning_metadata_loads_without_trust(tmp_path, source):
    path = _write(tmp_path, source, _mgca, "mgca.ckpt", torch.save)
    checkpoint = safe_load(path)
    assert checkpoint["pytorch-lightning_version"] == "1.5.9"
    assert checkpoint["hyper_parameters"]["batch_size"] == 72
    assert "state" in checkpoint["optimizer_states"][0]


def test_allowlisted_metadata_loads(tmp_path, monkeypatch):
    """Namespace, numpy scalars and paths (one written on Windows) in hyper-parameters load weights-only."""

    class WindowsPath(pathlib.PureWindowsPath):
        """Stands in for ``pathlib.WindowsPath`` so that a Windows-written path can be pickled here."""

    WindowsPath.__module__, WindowsPath.__qualname__ = "pathlib", "WindowsPath"
    monkeypatch.setattr(pathlib, "WindowsPath", WindowsPath)
    hyper_parameters = {
        "args": argparse.Namespace(lr=np.float64(2e-5), epochs=np.int64(50), half=np.bool_(False)),
        "scores": [np.float32(0.5), np.int32(-3), np.uint8(7), np.float16(1.5), np.complex64(1 + 2j)],
        "data_dir": pathlib.PosixPath("/data/mimic-cxr"),
        "windows_dir": WindowsPath("C:/data/mimic-cxr"),
    }
    path = tmp_path / "user.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "hyper_parameters": hyper_parameters}, path)
    monkeypatch.undo()

    loaded = safe_load(path)["hyper_parameters"]

    assert loaded["args"] == hyper_parameters["args"]
    assert type(loaded["args"].lr) is np.float64
    assert [type(value) for value in loaded["scores"]] == [type(value) for value in hyper_parameters["scores"]]
    assert loaded["scores"] == hyper_parameters["scores"]
    assert loaded["data_dir"] == pathlib.PurePosixPath("/data/mimic-cxr")
    assert loaded["windows_dir"] == pathlib.PureWindowsPath("C:/data/mimic-cxr")


def _fake_omegaconf(monkeypatch, ran: list) -> type:
    """Modules ``omegaconf``, ``omegaconf.dictconfig`` and ``omegaconf.base`` with a ``DictConfig`` that pickles
    like the real one (state holding metadata that names ``typing.Any`` and ``dict``); its ``__setstate__`` and
    constructor append to ``ran``. Returns ``DictConfig``."""
    import types
    import typing

    package, dictconfig, base = (types.ModuleType(name) for name in
                                 ("omegaconf", "omegaconf.dictconfig", "omegaconf.base"))

    class ContainerMetadata:
        def __init__(self, key_type, object_type):
            self.key_type, self.object_type = key_type, object_type

    class DictConfig:
        def __init__(self, content):
            ran.append("init")
            self._content, self._metadata = dict(content), ContainerMetadata(typing.Any, dict)

        def __getstate__(self):
            return {"_content": self._content, "_metadata": self._metadata, "_flags": {"readonly": False}}

        def __setstate__(self, state):
            ran.append("setstate")
            self.__dict__.update(state)

    for module, cls in ((dictconfig, DictConfig), (base, ContainerMetadata)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
        monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    monkeypatch.setitem(__import__("sys").modules, "omegaconf", package)
    return DictConfig


def test_omegaconf_metadata_loads_as_inert_stand_ins(tmp_path, monkeypatch, source):
    """GLoRIA's release keeps an OmegaConf config in ``hyper_parameters``: the weights load without trust, and no
    code of the config classes runs, even while the real (here: fake) omegaconf is importable."""
    ran = []
    DictConfig = _fake_omegaconf(monkeypatch, ran)
    path = tmp_path / "gloria.ckpt"
    state = _backbone(source, "gloria.img_encoder.model.")
    torch.save({"state_dict": state, "hyper_parameters": DictConfig({"lr": 5e-5, "model": "gloria"}),
                "hparams_type": DictConfig}, path)
    ran.clear()

    checkpoint = safe_load(path)

    assert ran == []
    assert all(torch.equal(checkpoint["state_dict"][key], value) for key, value in state.items())
    config = checkpoint["hyper_parameters"]
    assert isinstance(config, MetadataStandIn) and config.pickled_as == "omegaconf.dictconfig.DictConfig"
    assert config.state["_content"] == {"lr": 5e-5, "model": "gloria"}
    assert config.state["_metadata"].pickled_as == "omegaconf.base.ContainerMetadata"
    assert config.state["_metadata"].state["object_type"] is dict
    assert issubclass(checkpoint["hparams_type"], MetadataStandIn)
    assert repr(config) == "<stand-in for omegaconf.dictconfig.DictConfig>"


def test_stand_ins_do_not_admit_other_globals(tmp_path, monkeypatch, source):
    ran, marker = [], tmp_path / "pwned"
    DictConfig = _fake_omegaconf(monkeypatch, ran)
    path = tmp_path / "mixed.ckpt"
    torch.save({"state_dict": _backbone(source, "gloria.img_encoder.model."),
                "hyper_parameters": DictConfig({"lr": 5e-5}), "callback": _ShellPayload(marker)}, path)

    with pytest.raises(UntrustedCheckpointError) as refused:
        safe_load(path)

    assert refused.value.needed == ("posix.system",) and not marker.exists() and "setstate" not in ran


def test_legacy_torch_format_loads(tmp_path, source, new_encoder):
    path = tmp_path / "old.pth"
    torch.save(_torchvision(source), path, _use_new_zipfile_serialization=False)
    encoder = new_encoder()
    assert load_encoder_checkpoint(encoder, path).ok
    _assert_same_weights(encoder, source)


class _ShellPayload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class _ExecPayload(_ShellPayload):
    """Unpickling this runs Python code that creates ``marker``."""

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload,needed", [(_ShellPayload, "system"), (_ExecPayload, "builtins.exec")])
@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, source, payload, needed, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    checkpoint = {"state_dict": _backbone(source, "img_encoder_q.model."), "hyper_parameters": payload(marker)}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)

    with pytest.raises(UntrustedCheckpointError) as refused:
        safe_load(path)

    assert not marker.exists()
    message = str(refused.value)
    assert str(path) in message and "--trust-checkpoint" in message and needed in message
    assert isinstance(refused.value, MedvlpError)
    pickle.loads(pickle.dumps(payload(marker)))
    assert marker.exists(), "control: the payload does run when unpickled without restrictions"


def test_trust_loads_a_file_the_allowlist_refuses(tmp_path, capsys):
    path = tmp_path / "custom.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "ratio": Fraction(1, 3)}, path)

    with pytest.raises(UntrustedCheckpointError, match="fractions.Fraction"):
        safe_load(path)
    assert safe_load(path, trust=True)["ratio"] == Fraction(1, 3)
    warning = capsys.readouterr().err
    assert "warning" in warning and "fractions.Fraction" in warning and str(path) in warning


def test_trust_is_not_used_when_not_needed(tmp_path, capsys):
    path = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert torch.equal(safe_load(path, trust=True)["w"], torch.ones(2))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "checkpoint not found"),
        (b"", "the file is empty"),
        (b"epoch,loss\n1,0.5\n", "not a checkpoint"),
        (b"PK\x03\x04 truncated archive", "not a readable PyTorch checkpoint"),
        (b"\x80\x02}q\x00.", "not a readable PyTorch checkpoint"),
    ],
)
def test_unreadable_files_are_named(tmp_path, content, expected):
    path = tmp_path / "weights.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected) as error:
        safe_load(path)
    assert not isinstance(error.value, UntrustedCheckpointError)
    assert str(path) in str(error.value)


def test_a_directory_or_corrupt_safetensors_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="not a file"):
        safe_load(tmp_path)
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\xff" * 16)
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as error:
        safe_load(path)
    assert str(path) in str(error.value)


def test_checkpoint_without_encoder_weights_is_refused(tmp_path, new_encoder):
    path = tmp_path / "text_only.ckpt"
    torch.save({"state_dict": {"text_encoder_q.model.embeddings.word_embeddings.weight": torch.randn(30, 8)}}, path)
    with pytest.raises(CheckpointError, match="no weights imported") as error:
        load_encoder_checkpoint(new_encoder(), path, layouts=RELEASED)
    message = str(error.value)
    assert str(path) in message and "'img_encoder_q.model.'" in message and "text_encoder_q.model" in message


def test_wrong_layout_is_refused(tmp_path, source, new_encoder):
    path = _write(tmp_path, source, _mgca, "mgca.ckpt", torch.save)
    with pytest.raises(CheckpointError, match="no weights imported"):
        load_encoder_checkpoint(new_encoder(), path, layouts=[layout_named("gloria")])


def test_all_shapes_differing_is_refused(source, new_encoder):
    state = {key: torch.zeros(1, *value.shape) for key, value in _backbone(source, "").items()}
    with pytest.raises(CheckpointError, match="differ in shape"):
        import_encoder_weights(new_encoder(), state, source="r50.pth")


def test_shape_mismatch_is_reported_and_skipped(source, new_encoder):
    state = _torchvision(source)
    state["conv1.weight"] = torch.randn(64, 1, 7, 7)
    encoder = new_encoder()
    before = encoder.state_dict()["model.conv1.weight"].clone()

    report = import_encoder_weights(encoder, state, source="grey.pth")

    assert report.shape_mismatch == (("model.conv1.weight", (64, 1, 7, 7), (64, 3, 7, 7)),)
    assert not report.ok and report.missing == () and report.unexpected == ()
    assert torch.equal(encoder.state_dict()["model.conv1.weight"], before)
    key = "model.layer4.1.bn2.weight"
    assert torch.equal(encoder.state_dict()[key], source.state_dict()[key])
    assert "shape mismatch (1): model.conv1.weight checkpoint [64, 1, 7, 7] vs encoder [64, 3, 7, 7]" in (
        report.summary()
    )
    untouched = new_encoder()
    with pytest.raises(CheckpointError, match="grey.pth"):
        import_encoder_weights(untouched, state, source="grey.pth", strict=True)
    assert torch.equal(untouched.state_dict()[key], new_encoder().state_dict()[key])


def test_missing_and_unexpected_keys_are_reported(source, new_encoder):
    state = _torchvision(source)
    del state["layer4.1.bn2.weight"]
    for index in range(15):
        state[f"layer5.{index}.weight"] = torch.ones(1)

    report = import_encoder_weights(new_encoder(), state)

    assert report.missing == ("model.layer4.1.bn2.weight",)
    assert len(report.unexpected) == 15 and report.unexpected[0] == "layer5.0.weight"
    summary = report.summary()
    assert "missing (1): model.layer4.1.bn2.weight" in summary
    assert "unexpected (15): layer5.0.weight" in summary and "(+5 more)" in summary


def test_version_drift_keys_are_tolerated(source, new_encoder):
    """Files from before BatchNorm counted its steps, or with a stale ``position_ids`` buffer, are no surprise."""
    state = {key: value for key, value in _torchvision(source).items() if not key.endswith("num_batches_tracked")}
    state["embeddings.position_ids"] = torch.arange(8)
    encoder = new_encoder()

    report = import_encoder_weights(encoder, state, strict=True)

    assert report.ok and len(report.tolerated) == 21
    assert "embeddings.position_ids" in report.tolerated and "model.bn1.num_batches_tracked" in report.tolerated
    key = "model.layer1.0.conv1.weight"
    assert torch.equal(encoder.state_dict()[key], source.state_dict()[key])


def test_prefix_with_most_matches_wins_and_ties_go_to_the_first(source, new_encoder):
    state = {**_backbone(source, "img_encoder_q.model."), **_backbone(source, "img_encoder_k.model.")}
    prefixes = ["img_encoder_k.model.", "img_encoder_q.model."]
    assert import_encoder_weights(new_encoder(), state, prefixes=prefixes).prefix == "img_encoder_k.model."
    del state["img_encoder_k.model.conv1.weight"]
    report = import_encoder_weights(new_encoder(), state, prefixes=prefixes)
    assert report.prefix == "img_encoder_q.model." and report.layout is None
    assert import_encoder_weights(new_encoder(), state, layouts=RELEASED).layout == "mgca"
    total = len(source.state_dict())
    assert report.candidates == (("img_encoder_k.model.", total - 1), ("img_encoder_q.model.", total))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda state: state,
        lambda state: {"state_dict": state, "epoch": 3},
        lambda state: {"model": state, "optimizer": {"state": {}}},
    ],
)
def test_extract_state_dict_shapes(wrap):
    state = {"conv.weight": torch.ones(2), "conv.bias": torch.zeros(2)}
    assert extract_state_dict(wrap(state)).keys() == state.keys()


def test_extract_state_dict_from_module_and_refusals():
    linear = torch.nn.Linear(2, 3)
    assert set(extract_state_dict(linear)) == {"weight", "bias"}
    assert set(extract_state_dict({"model": linear})) == {"weight", "bias"}
    with pytest.raises(CheckpointError, match="run.ckpt: no weights found"):
        extract_state_dict({"epoch": 3, "hyper_parameters": {}}, source="run.ckpt")
    with pytest.raises(CheckpointError, match="holds a list"):
        extract_state_dict([torch.ones(1)])


def test_each_method_declares_its_layouts_and_a_prefix_is_tried_once():
    assert [layout.name for layout in RELEASED] == ["torchvision", "mgca", "harness", "gloria", "convirt"]
    assert layout_named("convirt").prefixes == ("img_encoder.model.", "")
    assert load_registry().get("method", "random").checkpoint_layouts == ()
    state = {"text.embeddings.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"prefixes tried \('', 'img_encoder_q.model.', "
                                              r"'gloria.img_encoder.model.', 'img_encoder.model.'\)"):
        import_encoder_weights(ResNetEncoder("resnet18", 64), state, layouts=RELEASED)


def test_a_third_party_layout_with_a_filter_function_imports(tmp_path, source, new_encoder):
    """A method with its own layout (here: backbone under ``net.trunk.`` with ``bn`` renamed ``norm``) maps its
    checkpoint to backbone names with a filter function, as timm keeps ``checkpoint_filter_fn`` beside a model."""
    renamed = {"net.trunk." + key.replace("bn", "norm"): value for key, value in _backbone(source, "").items()}
    path = tmp_path / "mine.ckpt"
    torch.save({"state_dict": renamed}, path)

    def to_backbone(state):
        return {key[len("net.trunk."):].replace("norm", "bn"): value for key, value in state.items()
                if key.startswith("net.trunk.")}

    layout = CheckpointLayout("mine", filter=to_backbone)
    encoder = new_encoder()
    report = load_encoder_checkpoint(encoder, path, layouts=[PLAIN_LAYOUT, layout])
    assert report.ok and report.layout == "mine" and report.prefix == "mine filter"
    _assert_same_weights(encoder, source)
    with pytest.raises(CheckpointError, match="no weights imported"):
        load_encoder_checkpoint(new_encoder(), path)
