"""Where things live: the harness home (caches, synthetic data, model store) and real data roots.

* ``MEDVLP_HOME`` (default ``~/.cache/medvlp-bench``): ``synthetic/`` (generated datasets), ``cache/``
  (prepared images and frozen features), ``models/`` (the model store), ``splits/`` (derived split files).
* A data root (``--data-root`` or ``MEDVLP_DATA_ROOT``) holds each dataset's raw download in a sub-folder named
  by the dataset plugin (``DatasetSpec.folder``); ``--dataset-path NAME=DIR`` overrides one dataset's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "MEDVLP_HOME"
DATA_ROOT_ENV = "MEDVLP_DATA_ROOT"
#: version of the synthetic generator; bump when its output changes so old caches are not reused
SYNTHETIC_VERSION = "v2"


def harness_home() -> Path:
    """The harness home folder (``$MEDVLP_HOME`` or ``~/.cache/medvlp-bench``)."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "medvlp-bench"


def synthetic_root(seed: int = 0, scale: float = 1.0) -> Path:
    """Root of the synthetic default data set generated with ``seed`` at size ``scale``."""
    suffix = "" if scale == 1.0 else f"-scale{scale:g}"
    return harness_home() / "synthetic" / f"{SYNTHETIC_VERSION}-seed{seed}{suffix}"


def configured_data_root() -> Path | None:
    """The real data root from ``$MEDVLP_DATA_ROOT``, or ``None``."""
    configured = os.environ.get(DATA_ROOT_ENV)
    return Path(configured).expanduser() if configured else None
