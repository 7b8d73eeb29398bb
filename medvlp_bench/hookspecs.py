"""Hook specifications: what a plugin may offer. Every hook returns a list of spec objects.

A plugin is a module with functions decorated ``@medvlp_bench.api.hookimpl`` named after these hooks, registered
through the entry-point group ``medvlp_bench`` (built-in plugins use the same group).
"""

from __future__ import annotations

import pluggy

PROJECT = "medvlp_bench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def medvlp_bench_image_encoders():
    """Return a list of :class:`~medvlp_bench.specs.ImageEncoderSpec`."""


@hookspec
def medvlp_bench_text_encoders():
    """Return a list of :class:`~medvlp_bench.specs.TextEncoderSpec`."""


@hookspec
def medvlp_bench_methods():
    """Return a list of :class:`~medvlp_bench.specs.MethodSpec`."""


@hookspec
def medvlp_bench_datasets():
    """Return a list of :class:`~medvlp_bench.specs.DatasetSpec`."""


@hookspec
def medvlp_bench_tasks():
    """Return a list of :class:`~medvlp_bench.specs.TaskSpec`."""


@hookspec
def medvlp_bench_protocols():
    """Return a list of :class:`~medvlp_bench.specs.ProtocolSpec`."""
