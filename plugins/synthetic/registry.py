"""The registry of the phantom's findings: every module of :mod:`.findings` that declares ``FINDING``.

:data:`FINDINGS` lists their names in draw order (the order of a study's random draws and of its lesions),
:data:`REGISTRY` maps a name to its :class:`~.finding_spec.FindingSpec`, :data:`DEFAULT_PREVALENCE` gives each
finding's default per-study probability. Adding a finding means adding one module to :mod:`.findings` with a
``draw_order`` after all others; as it changes every study's draws, it also needs a new synthetic version.
"""

from __future__ import annotations

import importlib
import pkgutil

from medvlp_bench_plugins.synthetic import findings
from medvlp_bench_plugins.synthetic.finding_spec import FindingSpec


def _collect() -> dict[str, FindingSpec]:
    specs = [importlib.import_module(f"{findings.__name__}.{module.name}").FINDING
             for module in pkgutil.iter_modules(findings.__path__)]
    for key in ("name", "draw_order", "report_order"):
        values = [getattr(spec, key) for spec in specs]
        if len(set(values)) != len(values):
            raise ValueError(f"two synthetic findings share a {key}: {sorted(values)}")
    return {spec.name: spec for spec in sorted(specs, key=lambda spec: spec.draw_order)}


REGISTRY: dict[str, FindingSpec] = _collect()
FINDINGS: tuple[str, ...] = tuple(REGISTRY)
#: default per-study probability of each finding (independent draws)
DEFAULT_PREVALENCE: dict[str, float] = {name: spec.prevalence for name, spec in REGISTRY.items()}
#: the findings in the order reports describe them (lungs, pleura, heart, devices)
REPORT_ORDER: tuple[str, ...] = tuple(sorted(FINDINGS, key=lambda name: REGISTRY[name].report_order))
