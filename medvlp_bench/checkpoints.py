"""Safe loading of pretrained checkpoints, and import of released checkpoint layouts into our image encoders.

Loading (:func:`safe_load`)
    A ``.ckpt`` / ``.pt`` / ``.pth`` file is a pickle, and unpickling can run any code the file's author chose.
    Files are therefore read with ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers
    only, plus the short allowlist :data:`SAFE_GLOBALS` of harmless classes that Lightning checkpoints carry in
    their metadata. A file that needs anything else is refused with :class:`UntrustedCheckpointError`, naming
    the objects it needs; the user may re-run with ``--trust-checkpoint`` (``trust=True``) if they trust where the
    file came from. ``.safetensors`` files hold tensors only and are always safe.

    Configuration classes in a checkpoint's metadata (GLoRIA's release keeps its OmegaConf config under
    ``hyper_parameters``; see :data:`STAND_IN_MODULES`) are rebuilt as inert :class:`MetadataStandIn` objects that
    hold the pickled arguments and state: the real classes are neither imported nor run, and the weights load
    without ``--trust-checkpoint``.

Import (:func:`import_encoder_weights`)
    Released checkpoints hold the image backbone under a method-specific key prefix; each method declares its
    layouts (:class:`~medvlp_bench.specs.CheckpointLayout`: key prefixes, or a filter function that maps the
    checkpoint's tensors to backbone names) in its ``MethodSpec.checkpoint_layouts`` and passes them here. Our
    encoders keep the backbone under ``model.`` with torchvision / timm parameter names, so importing is a prefix
    swap (or the filter's mapping), checked name by name and shape by shape, with a :class:`LoadReport` saying what
    was filled and what was surprising. Without layouts, a bare backbone state dict (:data:`PLAIN_LAYOUT`) is read.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import CheckpointLayout

PathLike = Union[str, os.PathLike]


class CheckpointError(MedvlpError):
    """A checkpoint is missing, unreadable, or holds no weights for the encoder; the message names the file."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint needs Python objects outside the allowlist to be unpickled, so loading it could run code.

    ``path`` is the file and ``needed`` the globals (``module.name``) it needs beyond :data:`SAFE_GLOBALS`.
    """

    def __init__(self, path: Path, needed: Sequence[str], reason: str):
        self.path = path
        self.needed = tuple(needed)
        what = ", ".join(self.needed) if self.needed else f"objects torch refuses ({reason})"
        super().__init__(
            f"{path}: refusing to load this checkpoint: unpickling it needs {what}, which a weights-only load "
            "does not allow because it could run code. Re-run with --trust-checkpoint only if you trust the "
            "file's origin."
        )


def _numpy_scalar_globals() -> list:
    """What a pickled numpy scalar (``np.float64(0.1)``) needs: its reconstructor, ``numpy.dtype`` and dtype classes.

    The reconstructor is registered under its numpy 1 and numpy 2 module paths, so files written under either
    load under either. Only the numeric and bool dtype classes are listed (not object, string or void dtypes).
    """
    scalar = np.float64(0).__reduce__()[0]
    dtype_classes = sorted({type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"}, key=lambda cls: cls.__name__)
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *dtype_classes,
    ]


#: Globals a weights-only load may use beyond torch's defaults (which already cover tensors, ``OrderedDict``,
#: ``set``, ``Counter``, ``complex``, ``bytearray``, ``torch.device``/``Size``/dtypes). Each is plain metadata of
#: Lightning checkpoints (``hyper_parameters``, callback state) and can only build inert values:
#:
#: * ``argparse.Namespace``: ``save_hyperparameters()`` stores an ``args`` init argument as is; rebuilding one
#:   only sets attributes.
#: * ``pathlib.PosixPath`` / ``WindowsPath``: path-valued hyper-parameters; rebuilt as ``PurePosixPath`` /
#:   ``PureWindowsPath``, which only join strings, never touch a file, and load on either OS.
#: * numpy scalars (learning rates, scores computed with numpy): the reconstructor turns raw bytes into a number of
#:   a numeric dtype; ``numpy.dtype`` and the numeric dtype classes rebuild that dtype (byte order and flags).
SAFE_GLOBALS: tuple = (
    argparse.Namespace,
    (pathlib.PurePosixPath, "pathlib.PosixPath"),
    (pathlib.PureWindowsPath, "pathlib.WindowsPath"),
    *_numpy_scalar_globals(),
)

#: Top-level modules whose classes a checkpoint may name only as configuration metadata; each class it needs from
#: them is replaced by a :class:`MetadataStandIn` subclass. ``omegaconf``: Lightning stores an OmegaConf config
#: (``DictConfig``, its nodes and metadata) as ``hyper_parameters`` and its class as ``hparams_type``; ``typing``:
#: OmegaConf metadata records ``typing.Any`` as a key or element type.
STAND_IN_MODULES = ("omegaconf", "typing")

#: Plain built-in types that OmegaConf metadata names (``object_type=dict``); as globals they rebuild plain values.
PLAIN_BUILTIN_TYPES = (dict, list, tuple, str, int, float, bool)


class MetadataStandIn:
    """An inert stand-in for a configuration class named in a checkpoint's metadata.

    ``pickled_as`` is the class's ``module.name``; ``args`` and ``kwargs`` hold what its constructor was given,
    ``state`` what pickle would have passed to ``__setstate__``. It has no other behaviour.
    """

    pickled_as = ""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.pickled_as}>"


def _stand_ins(needed: Iterable[str]) -> list[tuple[type, str]]:
    """A :class:`MetadataStandIn` subclass per needed global from :data:`STAND_IN_MODULES`, with the plain built-in
    types those need, as ``torch.serialization.safe_globals`` entries; empty if none of ``needed`` qualifies."""
    names = [name for name in needed if name.split(".")[0] in STAND_IN_MODULES]
    if not names:
        return []
    return [
        *((kind, f"builtins.{kind.__name__}") for kind in PLAIN_BUILTIN_TYPES),
        *((type(name.rsplit(".", 1)[-1], (MetadataStandIn,), {"pickled_as": name}), name) for name in names),
    ]


#: a bare backbone state dict: torchvision (ResNet) or timm (ViT) parameter names at the top level
PLAIN_LAYOUT = CheckpointLayout("torchvision", ("",))

#: Key names (last dotted part) whose absence or surplus is expected across library versions and harmless:
#: ``num_batches_tracked`` (BatchNorm's step counter, absent from pre-0.4.1 files; kept at the encoder's value and
#: used only when BatchNorm momentum is None) and ``position_ids`` (a constant index buffer that transformers stopped
#: saving, the cause of "unexpected position_ids" failures with strict loading).
TOLERATED_KEYS = ("num_batches_tracked", "position_ids")

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_OPCODE = b"\x80"
_STATE_DICT_ENTRIES = ("state_dict", "model")
_SUMMARY_LIMIT = 10


def safe_load(path: PathLike, *, trust: bool = False) -> Any:
    """Load a checkpoint file on the CPU without running code from it; usually returns a dict.

    ``.safetensors`` files are read with safetensors. Torch files are read weights-only with :data:`SAFE_GLOBALS`;
    one that needs other globals raises :class:`UntrustedCheckpointError`, unless ``trust`` is set: then, and only
    then, it is unpickled fully (which can run code), with a warning on stderr naming what it needed.
    Raises :class:`CheckpointError` for a missing, unreadable or unrecognised file.
    """
    path = Path(path)
    if _file_format(path) == "safetensors":
        return _load_safetensors(path)
    try:
        return _load_weights_only(path)
    except UntrustedCheckpointError as refusal:
        if not trust:
            raise
        print(
            f"medvlp-bench: warning: {path} needs {', '.join(refusal.needed) or 'non-allowlisted objects'}; "
            "unpickling it fully (--trust-checkpoint), which runs any code the file contains.",
            file=sys.stderr,
        )
        return _load_trusted(path)


def _file_format(path: Path) -> str:
    """``"safetensors"`` or ``"torch"`` (zip archive or legacy pickle), judged from the suffix and first bytes."""
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file; give the path of a checkpoint file")
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {error.strerror or error}") from error
    if path.suffix == ".safetensors" or _looks_like_safetensors(head, path.stat().st_size):
        return "safetensors"
    if head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_PROTOCOL_OPCODE):
        return "torch"
    what = "the file is empty" if not head else "it is neither a PyTorch file (zip or pickle) nor safetensors"
    raise CheckpointError(f"{path}: not a checkpoint: {what}")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length followed by the JSON header."""
    return len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (tensors only, nothing to unpickle)."""
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError as error:
        raise CheckpointError(f"{path}: a safetensors file; install the `safetensors` package to read it") from error
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file: {error}") from error


def _load_weights_only(path: Path) -> Any:
    """``torch.load`` weights-only with :data:`SAFE_GLOBALS`, then once more with stand-ins for the configuration
    classes it needs (:func:`_stand_ins`); a refusal becomes :class:`UntrustedCheckpointError`."""
    try:
        return _weights_only(path, [])
    except pickle.UnpicklingError as error:
        needed = _needed_globals(path, str(error))
        stand_ins = _stand_ins(needed)
        if not stand_ins:
            raise UntrustedCheckpointError(path, needed, _torch_reason(str(error))) from error
    try:
        return _weights_only(path, stand_ins)
    except pickle.UnpicklingError as error:
        raise UntrustedCheckpointError(path, _needed_globals(path, str(error), stand_ins),
                                       _torch_reason(str(error))) from error


def _weights_only(path: Path, extra_globals: list) -> Any:
    """``torch.load`` weights-only with :data:`SAFE_GLOBALS` and ``extra_globals``; unreadable files raise
    :class:`CheckpointError`, refusals pass through as ``pickle.UnpicklingError``."""
    try:
        with torch.serialization.safe_globals([*SAFE_GLOBALS, *extra_globals]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {_torch_reason(str(error))}") from error


def _needed_globals(path: Path, message: str, extra_globals: Sequence = ()) -> list[str]:
    """The globals the file needs beyond the allowlist (and ``extra_globals``): a static scan of its pickle (nothing
    is run), or, for legacy (non-zip) files the scan cannot read, the global named in torch's refusal message (which
    drops ``builtins.``)."""
    try:
        with torch.serialization.safe_globals([*SAFE_GLOBALS, *extra_globals]):
            found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, pickle.UnpicklingError):
        found = []
    named = re.findall(r"GLOBAL (\S+)", message)[:1]
    return sorted(found) or [name if "." in name else f"builtins.{name}" for name in named]


def _torch_reason(message: str) -> str:
    """The informative line of a torch.load error (torch wraps it in paragraphs of generic advice)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    specific = [line for line in lines if "GLOBAL" in line or "WeightsUnpickler error" in line]
    return (specific or lines or [message])[0]


def _load_trusted(path: Path) -> Any:
    """Full unpickling (``weights_only=False``): only after the user vouched for the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError, pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"{path}: cannot be unpickled even with --trust-checkpoint: {error}") from error


def extract_state_dict(checkpoint: Any, *, source: Optional[PathLike] = None) -> dict[str, torch.Tensor]:
    """The tensors of a loaded checkpoint, by key.

    Accepts a Lightning checkpoint (its ``state_dict``), a dict holding ``state_dict`` or ``model``, a state dict
    itself, or (from a trusted full pickle) a module. Non-tensor entries are dropped. ``source`` names the file
    in errors.
    """
    if isinstance(checkpoint, nn.Module):
        return _tensors(checkpoint.state_dict())
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{_name(source)}: holds a {type(checkpoint).__name__}, not a dict of weights")
    for entry in _STATE_DICT_ENTRIES:
        inner = checkpoint.get(entry)
        if isinstance(inner, nn.Module):
            return _tensors(inner.state_dict())
        if isinstance(inner, Mapping) and _tensors(inner):
            return _tensors(inner)
    if _tensors(checkpoint):
        return _tensors(checkpoint)
    keys = ", ".join(map(str, list(checkpoint)[:_SUMMARY_LIMIT]))
    raise CheckpointError(f"{_name(source)}: no weights found (no tensors, no 'state_dict' or 'model'); keys: {keys}")


def _tensors(mapping: Mapping) -> dict[str, torch.Tensor]:
    return {str(key): value for key, value in mapping.items() if isinstance(value, torch.Tensor)}


def _name(source: Optional[PathLike]) -> str:
    return str(source) if source is not None else "checkpoint"


@dataclass(frozen=True)
class LoadReport:
    """What :func:`import_encoder_weights` did.

    Encoder keys carry the target prefix (``model.conv1.weight``); ``unexpected`` and ``ignored`` are checkpoint keys.
    ``missing``: encoder keys left unfilled; ``unexpected``: checkpoint keys under the chosen prefix that the encoder
    lacks; ``shape_mismatch``: (encoder key, checkpoint shape, encoder shape), not loaded; ``tolerated``: missing or
    unexpected keys named in :data:`TOLERATED_KEYS` (not surprises); ``ignored``: keys under the prefix skipped on
    purpose (classifier heads); ``candidates``: each prefix tried and how many encoder keys it names.
    """

    source: str
    prefix: str
    layout: Optional[str]
    matched: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    shape_mismatch: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    tolerated: tuple[str, ...]
    ignored: tuple[str, ...]
    candidates: tuple[tuple[str, int], ...]

    @property
    def ok(self) -> bool:
        """True when every encoder tensor was filled and nothing under the prefix was left over."""
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def counts(self) -> dict:
        """A JSON-able summary for run records: the layout, prefix and the number of keys in each category."""
        return {
            "layout": self.layout, "prefix": self.prefix, "matched": len(self.matched), "missing": len(self.missing),
            "unexpected": len(self.unexpected), "shape_mismatch": len(self.shape_mismatch),
        }

    def summary(self, limit: int = _SUMMARY_LIMIT) -> str:
        """Counts, then the surprises (missing, unexpected, shape mismatches), each list cut at ``limit`` names."""
        total = len(self.matched) + len(self.missing) + len(self.shape_mismatch)
        layout = f" (layout {self.layout})" if self.layout else ""
        tried = ", ".join(f"'{prefix}': {count}" for prefix, count in self.candidates)
        lines = [
            f"{self.source}: imported {len(self.matched)} of {total} encoder tensors from prefix '{self.prefix}'"
            f"{layout}; prefixes tried (matching keys): {tried}",
            f"  ignored (classifier heads): {len(self.ignored)}; tolerated ({', '.join(TOLERATED_KEYS)}): "
            f"{len(self.tolerated)}",
        ]
        mismatches = [
            f"{key} checkpoint {list(theirs)} vs encoder {list(ours)}" for key, theirs, ours in self.shape_mismatch
        ]
        surprises = (("missing", self.missing), ("unexpected", self.unexpected), ("shape mismatch", mismatches))
        for title, items in surprises:
            if items:
                lines.append(f"  {title} ({len(items)}): {_truncated(items, limit)}")
        return "\n".join(lines)


def _truncated(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


@dataclass(frozen=True)
class _Candidate:
    """One way of reading a checkpoint: a layout's prefix or filter, as backbone name -> tensor.

    ``label``: the prefix, or ``"<layout> filter"``; ``origin``: backbone name -> the checkpoint key it came from.
    """

    label: str
    layout: Optional[str]
    view: dict[str, torch.Tensor]
    origin: dict[str, str]


def _candidates(state: Mapping[str, torch.Tensor], layouts: Sequence[CheckpointLayout]) -> list[_Candidate]:
    """Every prefix and filter of ``layouts`` in order; a prefix already offered by an earlier layout is skipped."""
    candidates, seen = [], set()
    for layout in layouts:
        if layout.filter is not None:
            view = _tensors(layout.filter(state))
            candidates.append(_Candidate(f"{layout.name} filter", layout.name or None, view, {key: key for key in view}))
        for prefix in layout.prefixes:
            if prefix in seen:
                continue
            seen.add(prefix)
            origin = {key[len(prefix):]: key for key in state if key.startswith(prefix)}
            candidates.append(_Candidate(prefix, layout.name or None,
                                         {name: state[key] for name, key in origin.items()}, origin))
    if not candidates:
        raise ValueError("checkpoint layouts need at least one key prefix or filter to try")
    return candidates


def detect_layout(
    state: Mapping[str, torch.Tensor],
    encoder_module: nn.Module,
    layouts: Sequence[CheckpointLayout] = (PLAIN_LAYOUT,),
    *,
    target_prefix: str = "model.",
) -> Optional[str]:
    """The name of the layout whose prefixes or filter name the most of the encoder's keys in ``state`` (ties: the
    earlier layout), or ``None`` if none names any."""
    targets = _encoder_targets(encoder_module, target_prefix)
    counts = [(_count_named(candidate, targets, target_prefix), candidate) for candidate in _candidates(state, layouts)]
    best_count, best = max(counts, key=lambda item: item[0])
    return best.layout if best_count > 0 else None


def _encoder_targets(encoder_module: nn.Module, target_prefix: str) -> dict[str, torch.Tensor]:
    """The encoder's state entries under ``target_prefix``: the ones an import must fill."""
    return {key: value for key, value in encoder_module.state_dict().items() if key.startswith(target_prefix)}


def _count_named(candidate: _Candidate, targets: Mapping[str, Any], target_prefix: str) -> int:
    """How many backbone names of a candidate name an encoder key under ``target_prefix``."""
    return sum(1 for name in candidate.view if target_prefix + name in targets)


@dataclass(frozen=True)
class _Plan:
    """The outcome of matching one prefix: tensors to load (by encoder key) and the leftovers."""

    loadable: dict[str, torch.Tensor]
    unexpected: list[str]
    ignored: list[str]
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]]


def _plan(
    candidate: _Candidate,
    targets: Mapping[str, torch.Tensor],
    target_prefix: str,
    ignore: tuple[str, ...],
) -> _Plan:
    """Sort a candidate's tensors into loadable, ignored, unexpected and shape-mismatched (leftovers are named by
    their checkpoint keys)."""
    plan = _Plan({}, [], [], [])
    for rest, tensor in candidate.view.items():
        key = candidate.origin[rest]
        target = target_prefix + rest
        if rest.startswith(ignore):
            plan.ignored.append(key)
        elif target not in targets:
            plan.unexpected.append(key)
        elif tuple(tensor.shape) != tuple(targets[target].shape):
            plan.shape_mismatch.append((target, tuple(tensor.shape), tuple(targets[target].shape)))
        else:
            plan.loadable[target] = tensor
    return plan


def _is_tolerated(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in TOLERATED_KEYS


def import_encoder_weights(
    encoder_module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    layouts: Sequence[CheckpointLayout] = (PLAIN_LAYOUT,),
    prefixes: Optional[Iterable[str]] = None,
    target_prefix: str = "model.",
    ignore: Sequence[str] = ("fc.", "head."),
    source: Optional[PathLike] = None,
    strict: bool = False,
) -> LoadReport:
    """Copy a checkpoint's backbone tensors into ``encoder_module`` and report what happened.

    Each prefix and filter of ``layouts`` is tried (``prefixes``, when given, replaces them by one unnamed layout): a
    checkpoint key ``prefix + name`` (or a filter's output ``name``) fills the encoder key ``target_prefix + name``.
    The candidate naming the most encoder keys wins (ties: the earlier one). Names starting with an ``ignore`` entry
    (classifier heads) are skipped; tensors whose shape differs are reported and not loaded; the rest is loaded with
    ``strict=False``. Raises :class:`CheckpointError` (naming ``source``) when no tensor could be loaded, or, with
    ``strict``, when the report has any surprise (then the encoder is left untouched).
    """
    if prefixes is not None:
        layouts = (CheckpointLayout("", tuple(prefixes)),)
    candidates = _candidates(state, layouts)
    ignore = (ignore,) if isinstance(ignore, str) else tuple(ignore)
    targets = _encoder_targets(encoder_module, target_prefix)
    counts = {candidate.label: _count_named(candidate, targets, target_prefix) for candidate in candidates}
    chosen = max(candidates, key=lambda candidate: counts[candidate.label])
    plan = _plan(chosen, targets, target_prefix, ignore)
    if not plan.loadable:
        raise CheckpointError(_nothing_loaded_message(_name(source), state, counts, chosen.label, plan))
    report = _report(_name(source), chosen, counts, plan, targets)
    if strict and not report.ok:
        raise CheckpointError(f"the checkpoint does not fit the encoder exactly:\n{report.summary()}")
    encoder_module.load_state_dict(plan.loadable, strict=False)
    return report


def _report(source: str, chosen: _Candidate, counts: Mapping[str, int], plan: _Plan,
            targets: Mapping[str, Any]) -> LoadReport:
    """Assemble the :class:`LoadReport`, moving tolerated keys out of ``missing`` and ``unexpected``."""
    mismatched = {key for key, _, _ in plan.shape_mismatch}
    unfilled = [key for key in targets if key not in plan.loadable and key not in mismatched]
    leftovers = unfilled + plan.unexpected
    return LoadReport(
        source=source,
        prefix=chosen.label,
        layout=chosen.layout,
        matched=tuple(plan.loadable),
        missing=tuple(key for key in unfilled if not _is_tolerated(key)),
        unexpected=tuple(key for key in plan.unexpected if not _is_tolerated(key)),
        shape_mismatch=tuple(plan.shape_mismatch),
        tolerated=tuple(key for key in leftovers if _is_tolerated(key)),
        ignored=tuple(plan.ignored),
        candidates=tuple(counts.items()),
    )


def _nothing_loaded_message(
    source: str, state: Mapping[str, Any], counts: Mapping[str, int], prefix: str, plan: _Plan
) -> str:
    """Why nothing could be imported: the prefixes tried and how the checkpoint's keys actually begin."""
    if plan.shape_mismatch:
        key, theirs, ours = plan.shape_mismatch[0]
        return (
            f"{source}: no weights imported: the {len(plan.shape_mismatch)} tensors named like the encoder's under "
            f"prefix '{prefix}' all differ in shape (e.g. {key}: checkpoint {list(theirs)} vs encoder {list(ours)}); "
            "is the checkpoint for another architecture?"
        )
    groups = list(dict.fromkeys(".".join(key.split(".")[:2]) for key in state))
    tried = ", ".join(f"'{candidate}'" for candidate in counts)
    return (
        f"{source}: no weights imported: none of its {len(state)} tensors is named like the encoder's under the "
        f"prefixes tried ({tried}); its keys begin with: {_truncated(groups, _SUMMARY_LIMIT)}"
    )


def load_encoder_checkpoint(
    encoder_module: nn.Module,
    path: PathLike,
    *,
    layouts: Sequence[CheckpointLayout] = (PLAIN_LAYOUT,),
    target_prefix: str = "model.",
    trust: bool = False,
    strict: bool = False,
) -> LoadReport:
    """Load ``path`` safely and import its backbone into ``encoder_module``: the one call a method plugin needs.

    ``layouts``: the layouts to try, usually the method's ``MethodSpec.checkpoint_layouts`` (see
    :func:`import_encoder_weights`); the default reads a bare backbone state dict. ``target_prefix``: where the
    encoder keeps its backbone (``model.`` in the built-in encoders; ``""`` for an encoder whose parameters are the
    backbone's).
    """
    state = extract_state_dict(safe_load(path, trust=trust), source=path)
    return import_encoder_weights(encoder_module, state, layouts=layouts, target_prefix=target_prefix, source=path,
                                  strict=strict)
