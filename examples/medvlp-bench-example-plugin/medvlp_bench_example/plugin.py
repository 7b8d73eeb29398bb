"""A third-party medvlp-bench plugin (the entry-point module): an image encoder (``tiny_cnn``), three methods
(``example_method`` loads weights; ``example_clip`` pretrains image-report pairs with its own checkpoint layout;
``example_rotation`` pretrains images only) and a task (``example_rsna_quick``). See the modules for each.

Everything imports only ``medvlp_bench.api`` from medvlp-bench; training code (Lightning) is imported only when a
method pretrains, so listing plugins stays fast.
"""

from __future__ import annotations

from medvlp_bench.api import ImageEncoderSpec, hookimpl
from medvlp_bench_example.encoder import TinyCNN
from medvlp_bench_example.methods import METHODS
from medvlp_bench_example.tasks import TASKS


@hookimpl
def medvlp_bench_image_encoders():
    return [ImageEncoderSpec(name="tiny_cnn", description="Tiny 4-stage CNN, 64 px (example plugin)", build=TinyCNN)]


@hookimpl
def medvlp_bench_methods():
    return METHODS


@hookimpl
def medvlp_bench_tasks():
    return TASKS
