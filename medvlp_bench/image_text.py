"""Protocols that evaluate a method's image-text model (its image and text towers together) instead of its image
encoder alone: zero-shot classification and image-text retrieval.

Such a protocol is declared as an :class:`ImageTextProtocolSpec`; for it the runner asks the method for
``MethodSpec.load_image_text_model(context)`` and hands the returned
:class:`~medvlp_bench.encoder.ImageTextModel` to the protocol as ``ProtocolInputs.encoder``. A method without a
text tower is refused before any data is read, in one line (:func:`require_image_text_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import MethodSpec, ProtocolSpec


@dataclass(frozen=True)
class ImageTextProtocolSpec(ProtocolSpec):
    """A :class:`ProtocolSpec` whose ``run`` receives the method's image-text model as ``inputs.encoder``."""


def needs_image_text_model(protocol: ProtocolSpec) -> bool:
    return isinstance(protocol, ImageTextProtocolSpec)


def require_image_text_model(method: MethodSpec, task: str, protocol: str, capable: Sequence[str]) -> None:
    """Raise :class:`MedvlpError` (one line) when ``method`` gives no image-text model; ``capable`` names the
    methods that do."""
    if method.load_image_text_model is None:
        raise MedvlpError(
            f"method {method.name!r} has no text tower: task {task!r} (protocol {protocol!r}) needs an image-text "
            f"model; methods that have one: {', '.join(sorted(capable)) or 'none installed'}"
        )
