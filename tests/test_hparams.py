"""Resolving a protocol's settings: declared defaults, then the task's overrides, then the run's; identical whether
the caller passes only overrides or everything already resolved; declared choices enforced."""

from __future__ import annotations

import pytest

from medvlp_bench.errors import MedvlpError
from medvlp_bench.protocols.hparams import option_defaults, resolved_hparams
from medvlp_bench.specs import OptionSpec, ProtocolInputs, TaskSpec

OPTIONS = (
    OptionSpec("lr", 1e-3, "learning rate", float),
    OptionSpec("batch_size", 8, "batch", int),
    OptionSpec("monitor", "val_loss", "selection", str, ("val_loss", "val_dice")),
)


def _inputs(task_hparams, hparams):
    task = TaskSpec(name="t", dataset="d", protocol="p", description="", load_splits=lambda folder: None,
                    label_names=("x",), target="binary", primary_metric="auroc", hparams=task_hparams)
    return ProtocolInputs(task=task, encoder=None, encoder_key="", splits=None, seed=0, hparams=hparams,
                          cache_dir=None, work_dir=None)


def test_layers_override_in_order_and_missing_names_come_from_the_defaults():
    assert option_defaults(OPTIONS) == {"lr": 1e-3, "batch_size": 8, "monitor": "val_loss"}
    overrides_only = resolved_hparams(OPTIONS, _inputs({"batch_size": 16}, {"lr": 0.1}), protocol="p")
    assert overrides_only == {"lr": 0.1, "batch_size": 16, "monitor": "val_loss"}
    # what the runner passes: everything resolved already; the same values come out
    assert resolved_hparams(OPTIONS, _inputs({"batch_size": 16}, overrides_only), protocol="p") == overrides_only
    assert resolved_hparams(OPTIONS, _inputs({"batch_size": 16}, {"batch_size": 4}), protocol="p")["batch_size"] == 4


def test_a_value_outside_the_choices_names_protocol_option_and_choices():
    with pytest.raises(MedvlpError, match=r"p: --option monitor='val_dcie' is not one of val_loss, val_dice"):
        resolved_hparams(OPTIONS, _inputs({}, {"monitor": "val_dcie"}), protocol="p")
