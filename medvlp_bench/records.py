"""Run records: one JSON file per run, written atomically, found again by the key of the run's config.

A record holds everything needed to tabulate and to reproduce a run (see :class:`RunRecord`).

* Config key: ``sha256(json.dumps(config, sort_keys=True, separators=(",", ":")))`` as a hex string, so the key
  does not depend on the order of the config's entries. The runner skips a run whose key already has a record.
* File name: ``{method}__{task}__pct{pct:g}__seed{seed}__{config_key[:12]}.json`` (:func:`record_filename`).
* Atomic write (:func:`write_record`, through :func:`medvlp_bench.data.build_once.atomic_write_bytes`): the JSON
  goes to a hidden temp file beside the target, unique to the host, process and call, is flushed and fsynced,
  renamed over the target with :func:`os.replace`, and the folder is fsynced. A killed writer leaves at most a hidden temp file, never a partial ``.json``; concurrent writers
  never lose a record (different keys give different files; for one key the last complete write wins).
* Reading (:func:`load_records`, :func:`find_record`): every ``*.json`` below a folder (recursively, hidden
  files and temp files skipped) must be a valid record. A corrupt or malformed file raises
  :class:`RecordError` naming the file rather than being skipped: with atomic writes such a file can only come
  from outside the harness, and silently dropping it would silently drop results from a leaderboard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import platform
import re
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import medvlp_bench
from medvlp_bench.data.build_once import atomic_write_text
from medvlp_bench.errors import MedvlpError

#: version of the record layout written now; version 2 added ``plugins``
SCHEMA_VERSION = 2
#: versions readers accept (records of version 1 load, with empty ``plugins``; the leaderboard marks them older)
READABLE_SCHEMA_VERSIONS = (1, 2)
#: roles every schema-2 record's ``plugins`` names (``text_encoder`` is added where one is used)
PLUGIN_ROLES = ("method", "task", "dataset", "protocol", "encoder")
#: keys of each entry of :attr:`RunRecord.plugins`
PLUGIN_KEYS = ("name", "distribution", "version")

DATA_SOURCES = ("synthetic", "real")

#: keys of :attr:`RunRecord.provenance` (all required; ``git_sha`` is null outside a git checkout)
PROVENANCE_KEYS = (
    "package_version",
    "git_sha",
    "torch_version",
    "python_version",
    "device",
    "hostname",
    "started_at",
    "finished_at",
    "wall_seconds",
)

#: fields that may be absent from a record file
OPTIONAL_FIELDS = frozenset({"details", "outputs"})

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class RecordError(MedvlpError):
    """A run record is malformed (missing fields, wrong types, unknown schema version) or not valid JSON.

    The message names the file when the record was read from one.
    """

    def __init__(self, message: str, *, file: Path | str | None = None):
        super().__init__(f"{file}: {message}" if file is not None else message)
        self.file = file


def config_key(config: dict) -> str:
    """sha256 hex digest of the canonical JSON of ``config`` (sorted keys, no whitespace, ASCII)."""
    try:
        canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise RecordError(f"config is not JSON-able: {error}") from error
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class RunRecord:
    """The result and provenance of one run (method x task x pct x seed), as written to its JSON file.

    Units: ``pct`` is the fraction of the training split used, in (0, 1]; ``metrics`` map names to fractions in
    [0, 1], or ``None`` where a metric is undefined on the test set (e.g. AUROC when the test set has one class;
    a NaN value is stored as ``None``); ``higher_is_better`` is the direction of ``primary_metric``; ``n_*`` are
    numbers of images; ``provenance.wall_seconds`` is ``finished_at - started_at`` in seconds, both ISO 8601 UTC
    timestamps. ``plugins`` maps each role (:data:`PLUGIN_ROLES`, plus ``text_encoder`` where used) to the
    plugin's ``name``, ``distribution`` and ``version`` (built-in plugins name this package); the runner always
    fills it; it is empty in records of schema version 1, which predate it (and may be in records built by hand).
    ``config`` is the full resolved config of the run (JSON-able; tuples are stored as lists) and
    ``config_key`` must equal :func:`config_key` of it. ``details`` holds free-form JSON-able extras of the
    protocol and runner (optional when reading; every other field is required). ``outputs`` names the per-sample
    outputs file beside the record and its sha256 (``{"file", "sha256"}``, see :mod:`medvlp_bench.sample_outputs`),
    or is ``None`` (absent in records written before per-sample outputs existed).

    Construction normalises numbers (numpy scalars become Python ``int`` / ``float``), validates every field and
    raises :class:`RecordError`.
    """

    method: str
    task: str
    dataset: str
    data_source: str
    pct: float
    seed: int
    protocol: str
    metrics: dict[str, Optional[float]]
    primary_metric: str
    higher_is_better: bool
    n_train: int
    n_val: int
    n_test: int
    checkpoint: Optional[str]
    checkpoint_sha256: Optional[str]
    encoder: dict[str, Any]
    config: dict[str, Any]
    config_key: str
    split_hash: str
    provenance: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    outputs: Optional[dict[str, str]] = None
    plugins: dict[str, dict[str, str]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _normalise(self)
        problems = _problems(self)
        if problems:
            raise RecordError("invalid run record: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict written to disk, ``schema_version`` first (a schema-1 record keeps its layout)."""
        fields = dataclasses.asdict(self)
        if self.schema_version == 1:
            fields.pop("plugins")
        return {"schema_version": fields.pop("schema_version"), **fields}

    @classmethod
    def from_dict(cls, data: Any, *, source: Path | str | None = None) -> "RunRecord":
        """Validate and build a record from a dict read from JSON; errors name ``source`` (a file) if given."""
        if not isinstance(data, dict):
            raise RecordError(f"a run record must be a JSON object, got {type(data).__name__}", file=source)
        version = data.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS or isinstance(version, bool):
            raise RecordError(
                f"unsupported schema_version {version!r} (this medvlp-bench reads versions "
                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))})",
                file=source,
            )
        names = {item.name for item in dataclasses.fields(cls)} - ({"plugins"} if version == 1 else set())
        missing = sorted(names - data.keys() - OPTIONAL_FIELDS)
        unknown = sorted(data.keys() - names)
        if missing or unknown:
            parts = ([f"missing fields {missing}"] if missing else []) + (
                [f"unknown fields {unknown}"] if unknown else []
            )
            raise RecordError("; ".join(parts), file=source)
        try:
            return cls(**data)
        except RecordError as error:
            raise RecordError(str(error), file=source) from error


def _normalise(record: RunRecord) -> None:
    """Python numbers for numeric fields and metrics (NaN metrics become ``None``); JSON-normal config and
    details (tuples become lists). Values of the wrong kind are left for :func:`_problems` to report."""
    for name in ("seed", "n_train", "n_val", "n_test"):
        value = getattr(record, name)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            setattr(record, name, int(value))
    if isinstance(record.pct, numbers.Real) and not isinstance(record.pct, bool):
        record.pct = float(record.pct)
    if isinstance(record.metrics, dict):
        record.metrics = {name: _metric_value(value) for name, value in record.metrics.items()}
    for name in ("config", "details"):
        if isinstance(getattr(record, name), dict):
            try:
                setattr(record, name, json.loads(json.dumps(getattr(record, name))))
            except (TypeError, ValueError) as error:
                raise RecordError(f"{name} is not JSON-able: {error}") from error


def _metric_value(value: Any) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return None if math.isnan(value) else float(value)
    return value


def _problems(record: RunRecord) -> list[str]:
    """Every way in which ``record`` breaks the schema (empty list = valid)."""
    problems = []
    for name in ("method", "task", "dataset", "protocol", "primary_metric", "split_hash"):
        if not isinstance(getattr(record, name), str) or not getattr(record, name):
            problems.append(f"{name} must be a non-empty string")
    if record.schema_version not in READABLE_SCHEMA_VERSIONS:
        problems.append(f"schema_version must be one of {READABLE_SCHEMA_VERSIONS}")
    else:
        problems += _plugin_problems(record.plugins, record.schema_version)
    if record.data_source not in DATA_SOURCES:
        problems.append(f"data_source must be one of {DATA_SOURCES}, got {record.data_source!r}")
    if not _is_number(record.pct) or not 0.0 < record.pct <= 1.0:
        problems.append(f"pct must be a fraction in (0, 1], got {record.pct!r}")
    for name in ("seed", "n_train", "n_val", "n_test"):
        value = getattr(record, name)
        if not _is_int(value) or (name != "seed" and value < 0):
            problems.append(f"{name} must be {'an' if name == 'seed' else 'a non-negative'} integer, got {value!r}")
    if not isinstance(record.higher_is_better, bool):
        problems.append("higher_is_better must be true or false")
    problems += _metric_problems(record.metrics, record.primary_metric)
    problems += _checkpoint_problems(record.checkpoint, record.checkpoint_sha256)
    for name in ("encoder", "details"):
        if not isinstance(getattr(record, name), dict):
            problems.append(f"{name} must be an object")
    if not isinstance(record.config, dict):
        problems.append("config must be an object")
    elif record.config_key != config_key(record.config):
        problems.append("config_key is not the sha256 of the canonical JSON of config")
    problems += _provenance_problems(record.provenance)
    if record.outputs is not None and not (
        isinstance(record.outputs, dict) and set(record.outputs) == {"file", "sha256"}
        and isinstance(record.outputs["file"], str) and "/" not in record.outputs["file"]
        and isinstance(record.outputs["sha256"], str) and _SHA256_HEX.fullmatch(record.outputs["sha256"])
    ):
        problems.append('outputs must be null or {"file": <name beside the record>, "sha256": <64 hex digits>}')
    return problems


def _plugin_problems(plugins: Any, schema_version: int) -> list[str]:
    """A schema-2 record that names plugins names every role of :data:`PLUGIN_ROLES` by name, distribution and
    version; a schema-1 record names none."""
    if not isinstance(plugins, dict):
        return ["plugins must be an object of role -> {name, distribution, version}"]
    if schema_version == 1:
        return [] if not plugins else ["plugins must be empty in a schema_version 1 record"]
    problems = [f"plugins lacks the role {role!r}" for role in PLUGIN_ROLES if plugins and role not in plugins]
    for role, entry in plugins.items():
        if not isinstance(entry, dict) or sorted(entry) != sorted(PLUGIN_KEYS) or not all(
            isinstance(entry[key], str) for key in PLUGIN_KEYS
        ):
            problems.append(f"plugins.{role} must be an object of strings {', '.join(PLUGIN_KEYS)}")
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric_problems(metrics: Any, primary_metric: Any) -> list[str]:
    if not isinstance(metrics, dict) or not metrics:
        return ["metrics must be a non-empty object of name -> fraction"]
    problems = [
        f"metric {name!r} must be a fraction in [0, 1] or null (undefined), got {value!r}"
        for name, value in metrics.items()
        if value is not None and not (_is_number(value) and 0.0 <= value <= 1.0)
    ]
    if primary_metric not in metrics:
        problems.append(f"primary_metric {primary_metric!r} is not among the metrics {sorted(metrics)}")
    return problems


def _checkpoint_problems(checkpoint: Any, sha256: Any) -> list[str]:
    if checkpoint is None:
        return [] if sha256 is None else ["checkpoint_sha256 must be null when checkpoint is null"]
    if not isinstance(checkpoint, str) or not checkpoint:
        return ["checkpoint must be a path string or null"]
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256_HEX.fullmatch(sha256)):
        return ["checkpoint_sha256 must be 64 lower-case hex digits or null"]
    return []


def _provenance_problems(provenance: Any) -> list[str]:
    if not isinstance(provenance, dict):
        return ["provenance must be an object"]
    missing = [key for key in PROVENANCE_KEYS if key not in provenance]
    if missing:
        return [f"provenance lacks {missing}"]
    problems = [
        f"provenance.{key} must be an ISO 8601 UTC timestamp, got {provenance[key]!r}"
        for key in ("started_at", "finished_at")
        if not _is_utc_timestamp(provenance[key])
    ]
    if not _is_number(provenance["wall_seconds"]) or provenance["wall_seconds"] < 0:
        problems.append("provenance.wall_seconds must be a non-negative number")
    return problems


def _is_utc_timestamp(value: Any) -> bool:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0


def record_filename(record: RunRecord) -> str:
    """``{method}__{task}__pct{pct:g}__seed{seed}__{config_key[:12]}.json``, characters outside
    ``[A-Za-z0-9._-]`` in method and task replaced by ``-``."""
    method = _UNSAFE_FILENAME_CHARS.sub("-", record.method)
    task = _UNSAFE_FILENAME_CHARS.sub("-", record.task)
    return f"{method}__{task}__pct{record.pct:g}__seed{record.seed}__{record.config_key[:12]}.json"


def write_record(record: RunRecord, out_dir: Path | str, outputs: Optional[dict] = None) -> Path:
    """Write ``record`` atomically into ``out_dir`` (created if needed) and return the path of its file.

    With ``outputs`` (per-sample arrays, :mod:`medvlp_bench.sample_outputs`), they are written first, atomically,
    to ``<record stem>.outputs.npz`` beside the record, and ``record.outputs`` is set to its name and sha256.
    See the module docstring for the protocol (temp file, fsync, :func:`os.replace`, fsync of the folder).
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / record_filename(record)
    if outputs is not None:
        from medvlp_bench.sample_outputs import outputs_filename, write_outputs

        name = outputs_filename(target.name)
        record.outputs = {"file": name, "sha256": write_outputs(outputs, folder / name)}
    atomic_write_text(target, json.dumps(record.to_dict(), indent=2, allow_nan=False) + "\n")
    return target


def _record_paths(folder: Path) -> list[Path]:
    """``*.json`` files below ``folder`` (recursively, sorted), without hidden and temp files."""
    return sorted(
        path
        for path in folder.rglob("*.json")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(
            f"not a valid JSON run record ({error}); repair or remove the file", file=path
        ) from error


def read_record(path: Path | str) -> RunRecord:
    """Read and validate one record file; errors name the file."""
    return RunRecord.from_dict(_read_json(Path(path)), source=path)


def load_record_files(folder: Path | str) -> list[tuple[Path, RunRecord]]:
    """``(path, record)`` of every record below ``folder``, as :func:`load_records` (which it backs)."""
    root = Path(folder)
    if not root.is_dir():
        raise RecordError("no such results folder", file=root)
    return [(path, read_record(path)) for path in _record_paths(root)]


def load_records(folder: Path | str) -> list[RunRecord]:
    """All records below ``folder``, recursively, in sorted path order.

    Hidden files and temp files of unfinished writes are skipped; any other ``*.json`` that is not a valid
    record raises :class:`RecordError` naming it (see the module docstring). A missing folder raises too.
    """
    return [record for _, record in load_record_files(folder)]


#: path -> (mtime_ns, size, config_key or None) of record files already read by :func:`find_record`
_KEYS_READ: dict[Path, tuple[int, int, Optional[str]]] = {}


def _key_of(path: Path) -> Optional[str]:
    """The ``config_key`` a JSON file holds (``None`` if it holds none), re-read only when the file changed since the
    last call in this process: planning hundreds of runs against one results folder reads each file once."""
    status = path.stat()
    cached = _KEYS_READ.get(path)
    if cached is not None and cached[:2] == (status.st_mtime_ns, status.st_size):
        return cached[2]
    data = _read_json(path)
    key = data.get("config_key") if isinstance(data, dict) else None
    _KEYS_READ[path] = (status.st_mtime_ns, status.st_size, key if isinstance(key, str) else None)
    return _KEYS_READ[path][2]


def find_record(out_dir: Path | str, config_key: str) -> Path | None:
    """The record file below ``out_dir`` whose content has ``config_key`` (not only its file name), or ``None``.

    Files whose name carries the key's 12-digit prefix are checked first; the first match in sorted path order
    is returned and validated. Keys are remembered per file (modification time and size), so repeated searches
    read only new or changed files.
    """
    root = Path(out_dir)
    if not root.is_dir():
        return None
    paths = _record_paths(root)
    suffix = f"__{config_key[:12]}.json"
    for path in sorted(paths, key=lambda path: not path.name.endswith(suffix)):
        if _key_of(path) == config_key:
            read_record(path)
            return path
    return None


def collect_provenance(started_at: datetime, finished_at: datetime, device: str) -> dict[str, Any]:
    """The ``provenance`` of a run that ran on ``device`` (e.g. ``"cuda:0 (NVIDIA H200)"`` or ``"cpu"``).

    ``started_at`` and ``finished_at`` must be timezone-aware; they are stored as ISO 8601 UTC strings with
    microseconds, and ``wall_seconds = (finished_at - started_at).total_seconds()``. ``git_sha`` is the HEAD
    commit of the harness's source tree when it is a git checkout, else null; ``torch_version`` is
    ``torch.__version__`` (with its build tag, e.g. ``2.4.0+cu121``).
    """
    import torch  # imported here: reading and tabulating records must not pay for importing torch

    if started_at.tzinfo is None or finished_at.tzinfo is None:
        raise ValueError("started_at and finished_at must be timezone-aware datetimes")
    return {
        "package_version": medvlp_bench.__version__,
        "git_sha": harness_git_sha(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "hostname": socket.gethostname(),
        "started_at": started_at.astimezone(timezone.utc).isoformat(),
        "finished_at": finished_at.astimezone(timezone.utc).isoformat(),
        "wall_seconds": (finished_at - started_at).total_seconds(),
    }


def harness_git_sha() -> str | None:
    """HEAD commit of the folder holding the ``medvlp_bench`` package when that folder is a git checkout's
    root (an editable install), else ``None``; never raises (no git, no repository, timeout)."""
    root = Path(medvlp_bench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = result.stdout.strip()
    return sha if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else None

