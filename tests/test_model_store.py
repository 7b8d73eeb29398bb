"""Model store keys and locations."""

from __future__ import annotations

import json

from medvlp_bench.pretraining.model_store import (
    FINAL_CHECKPOINT,
    pretrain_key,
    store_folder,
    stored_checkpoint,
    write_config,
)


def test_key_is_order_free_and_content_sensitive():
    assert pretrain_key({"a": 1, "b": {"c": 2}}) == pretrain_key({"b": {"c": 2}, "a": 1})
    assert pretrain_key({"a": 1}) != pretrain_key({"a": 2})


def test_a_model_counts_as_stored_once_its_final_checkpoint_exists(fresh_home):
    key = pretrain_key({"method": "mgca"})
    folder = store_folder("mgca", key)
    assert folder == fresh_home / "models" / "mgca" / key[:16]
    write_config(folder, {"method": "mgca"})
    assert json.loads((folder / "config.json").read_text()) == {"method": "mgca"}
    assert stored_checkpoint("mgca", key) is None
    (folder / FINAL_CHECKPOINT).write_bytes(b"weights")
    assert stored_checkpoint("mgca", key) == folder / FINAL_CHECKPOINT
