"""Contract tests over the registry: every registered encoder, method, task and protocol (built-in or installed by a
third party) passes the same checks. Encoders: output shapes, normalisation constants, determinism. Methods: a
complete, consistent description (encoders, corpus, profiles, options, layouts) and, for those that need no
weights, a seeded encoder. Tasks: disjoint splits with the declared target columns, the same on every load,
options their protocol declares. Protocols: a valid record on tiny synthetic data."""

from __future__ import annotations

import json

import pytest
import torch

from medvlp_bench.errors import WeightsNotFoundError
from medvlp_bench.image_text import needs_image_text_model
from medvlp_bench.options import resolve_options
from medvlp_bench.records import PLUGIN_ROLES, RunRecord
from medvlp_bench.registry import load_registry
from medvlp_bench.specs import SAMPLE_COLUMNS, MethodContext

REGISTRY = load_registry()
TINY = {"synthetic": True, "synthetic_scale": 0.1}


@pytest.mark.parametrize("name", REGISTRY.names("encoder"))
def test_every_encoder_gives_declared_shapes_deterministically(name):
    torch.manual_seed(0)
    encoder = REGISTRY.get("encoder", name).build().eval()
    assert len(encoder.mean) == len(encoder.std) == 3 and all(0 < value <= 1 for value in encoder.std)
    assert encoder.arch and len(encoder.map_channels) == len(encoder.map_strides) > 0
    side = encoder.input_size
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        global_features, maps, tokens = encoder.global_features(x), encoder.feature_maps(x), encoder.local_tokens(x)
        again = encoder.global_features(x)
    assert global_features.shape == (2, encoder.global_dim) and torch.equal(global_features, again)
    assert [m.shape[1] for m in maps] == list(encoder.map_channels)
    assert [side // m.shape[-1] for m in maps] == list(encoder.map_strides)
    assert tokens.ndim == 3 and tokens.shape[0] == 2
    assert set(encoder.describe()) >= {"arch", "input_size", "global_dim", "map_channels", "map_strides"}


@pytest.mark.parametrize("name", REGISTRY.names("method"))
def test_every_method_describes_itself_consistently(name):
    method = REGISTRY.get("method", name)
    assert method.description and set(method.default_encoder) <= {"synthetic", "real"}
    for encoder in method.default_encoder.values():
        REGISTRY.get("encoder", encoder)
    assert all(option.help for option in method.options)
    resolve_options(method.options, owner=f"method {name!r}")  # defaults fit their declared types
    if method.pretrain is None:
        assert not method.pretraining_profiles and method.corpus is None
        return
    assert REGISTRY.get("dataset", method.corpus).load_corpus is not None
    assert method.checkpoint_layouts, "a method that pretrains says where its checkpoints keep the encoder"
    for source, profile in method.pretraining_profiles.items():
        assert source in ("synthetic", "real") and profile.max_epochs > 0 and profile.batch_size > 0
        REGISTRY.get("encoder", profile.image_encoder)
        if profile.text_encoder is not None:
            REGISTRY.get("text_encoder", profile.text_encoder)
        resolve_options(method.options, profile.options, owner=f"method {name!r}")


@pytest.mark.parametrize("name", [n for n in REGISTRY.names("method") if REGISTRY.get("method", n).pretrain is None])
def test_every_method_without_pretraining_gives_an_encoder_fixed_by_its_seed(name, tmp_path):
    method = REGISTRY.get("method", name)

    def context(seed):
        return MethodContext(encoder=method.default_encoder.get("synthetic", "resnet18_64"),
                             build_encoder=lambda encoder: REGISTRY.get("encoder", encoder).build(),
                             load_imagenet=lambda encoder, module: REGISTRY.get("encoder", encoder).load_imagenet(module),
                             checkpoint=None, seed=seed, data_source="synthetic", home=tmp_path)

    try:
        first, second = method.load_image_encoder(context(0)), method.load_image_encoder(context(0))
    except WeightsNotFoundError as error:  # weights the user must place in a local cache
        pytest.skip(str(error))
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key


@pytest.mark.parametrize("name", REGISTRY.names("task"))
def test_every_task_splits_its_synthetic_twin_deterministically_with_its_targets(name):
    from medvlp_bench.data.synthetic_store import ensure_synthetic

    task = REGISTRY.get("task", name)
    protocol = REGISTRY.get("protocol", task.protocol)
    resolve_options(protocol.options, task.hparams, owner=f"protocol {protocol.name!r}")
    trains = not needs_image_text_model(protocol)  # zero-shot and retrieval train nothing: only a test split
    assert task.split_rule and task.primary_metric and (task.label_names or task.target == "report")
    if protocol.metrics:
        assert task.primary_metric in protocol.metrics
    folder = ensure_synthetic(REGISTRY.get("dataset", task.dataset), 0, 0.1)
    splits, again = task.load_splits(folder), task.load_splits(folder)
    ids = {}
    for part, table in splits.items():
        assert set(SAMPLE_COLUMNS) <= set(table.columns) and (len(table) > 0 or not trains and part != "test"), part
        assert list(table["sample_id"]) == list(getattr(again, part)["sample_id"]), part
        ids[part] = set(table["sample_id"])
        targets = {"binary": task.label_names, "multilabel": task.label_names, "multiclass": ("label",),
                   "boxes": ("boxes",), "mask": (), "report": ("text",)}[task.target]
        assert set(targets) <= set(table.columns), part
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    if task.target == "mask":
        assert task.load_mask is not None


def _short(protocol):
    """``max_epochs=1`` where the protocol takes it."""
    names = [getattr(option, "name", option) for option in protocol.options or ()]
    return {"max_epochs": 1} if protocol.options is None or "max_epochs" in names else {}


@pytest.mark.parametrize("name", REGISTRY.names("protocol"))
def test_every_protocol_writes_a_valid_record_on_tiny_synthetic_data(name, tmp_path):
    from medvlp_bench.runner import RunRequest, run

    tasks = [task for task in REGISTRY.names("task") if REGISTRY.get("task", task).protocol == name]
    if not tasks:
        pytest.skip(f"no registered task uses protocol {name!r}")
    protocol = REGISTRY.get("protocol", name)
    outcome = run(REGISTRY, RunRequest(method="random", task=tasks[0], pct=1.0, out_dir=tmp_path,
                                       hparams=_short(protocol), **TINY))
    record = outcome.record
    assert set(PLUGIN_ROLES) <= set(record.plugins) and record.plugins["protocol"]["name"] == name
    assert record.config["protocol_version"] == protocol.version
    if protocol.metrics:
        task = REGISTRY.get("task", tasks[0])
        per_label = {f"{metric}_{label}" for metric in protocol.metrics for label in task.label_names}
        assert set(record.metrics) <= set(protocol.metrics) | per_label
    assert (record.n_train > 0 or needs_image_text_model(protocol)) and record.n_test > 0
    assert RunRecord.from_dict(json.loads(outcome.path.read_text())) == record
