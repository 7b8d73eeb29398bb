"""A task's protocol settings as a run resolves them (used by the dataset tests to check the reference values)."""

from __future__ import annotations

from medvlp_bench.registry import load_registry


def resolved_settings(task) -> dict:
    """The task's protocol settings: its protocol's declared defaults updated by the task's overrides."""
    declared = load_registry().get("protocol", task.protocol).options
    return {**{option.name: option.default for option in declared}, **dict(task.hparams)}
