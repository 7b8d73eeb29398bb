"""Plugin discovery and the registry of encoders, methods, datasets, tasks and protocols.

Plugins are modules registered under the entry-point group ``medvlp_bench`` (the built-in ones too, by this
package's own metadata). Each entry point is imported on its own: one that fails to import, or whose hook
raises, or that returns an invalid or duplicate name, becomes a *problem* naming the distribution and the entry
point, and everything else keeps working. On a duplicate name a built-in (or core) plugin wins over a third-party
one (built-ins are registered first); two third-party distributions that register the same name are both refused,
naming both, since neither order of installation should decide which one a benchmark runs. Once every plugin is
loaded, a task whose protocol or dataset is unknown, or whose target its protocol does not accept, is refused too.
"""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Iterable

import pluggy

import medvlp_bench
from medvlp_bench import hookspecs
from medvlp_bench.errors import UnknownNameError
from medvlp_bench.specs import (
    DatasetSpec,
    ImageEncoderSpec,
    MethodSpec,
    ProtocolSpec,
    TaskSpec,
    TextEncoderSpec,
)

ENTRY_POINT_GROUP = "medvlp_bench"
BUILTIN_DISTRIBUTION = "medvlp-bench"
#: modules of the core itself that implement hooks (the protocols); not plugins, so not entry points
CORE_HOOK_MODULES = ("medvlp_bench.protocols.builtin",)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

#: kind -> (hook name, spec type)
KINDS: dict[str, tuple[str, type]] = {
    "encoder": ("medvlp_bench_image_encoders", ImageEncoderSpec),
    "text_encoder": ("medvlp_bench_text_encoders", TextEncoderSpec),
    "method": ("medvlp_bench_methods", MethodSpec),
    "dataset": ("medvlp_bench_datasets", DatasetSpec),
    "task": ("medvlp_bench_tasks", TaskSpec),
    "protocol": ("medvlp_bench_protocols", ProtocolSpec),
}


@dataclass(frozen=True)
class Origin:
    """Where a plugin comes from: ``built-in``, ``core``, or a third-party distribution and version."""

    distribution: str
    version: str
    entry_point: str

    @property
    def label(self) -> str:
        if self.distribution in ("built-in", "core"):
            return self.distribution
        return f"{self.distribution} {self.version}"


@dataclass(frozen=True)
class Registered:
    spec: Any
    origin: Origin


@dataclass
class Registry:
    """Specs by kind and name, with their origins, plus the problems met while loading plugins."""

    entries: dict[str, dict[str, Registered]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    problems: list[str] = field(default_factory=list)
    #: (kind, name) -> origins of the third-party distributions that registered a refused, contested name
    contested: dict[tuple[str, str], list[Origin]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def provenance(self, kind: str, name: str) -> dict[str, str]:
        """``{"name", "distribution", "version"}`` of a registered plugin (built-in and core plugins name this
        package's distribution); it enters run records and config keys."""
        self.get(kind, name)
        origin = self.entries[kind][name].origin
        distribution = BUILTIN_DISTRIBUTION if origin.distribution in ("built-in", "core") else origin.distribution
        return {"name": name, "distribution": distribution, "version": origin.version}

    def get(self, kind: str, name: str) -> Any:
        """The spec of ``kind`` called ``name``; unknown names raise :class:`UnknownNameError` with suggestions."""
        if name in self.entries[kind]:
            return self.entries[kind][name].spec
        available = self.names(kind)
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"unknown {kind} {name!r}.{hint} Available {kind}s: {', '.join(available) or 'none'}.")

    def add(self, kind: str, spec: Any, origin: Origin) -> None:
        hook, spec_type = KINDS[kind]
        where = f"{origin.label} (entry point {origin.entry_point!r})"
        if not isinstance(spec, spec_type):
            self.problems.append(f"{where}: {hook} returned {type(spec).__name__}, expected {spec_type.__name__}")
            return
        if not isinstance(spec.name, str) or not NAME_PATTERN.match(spec.name):
            self.problems.append(f"{where}: invalid {kind} name {spec.name!r} (use lower-case letters, digits, _)")
            return
        rivals = self.contested.get((kind, spec.name))
        if rivals is not None:
            rivals.append(origin)
            self.problems.append(f"{where}: {kind} name {spec.name!r} is also registered by "
                                 f"{_labels(rivals[:-1])}; refused")
            return
        existing = self.entries[kind].get(spec.name)
        if existing is not None:
            if _is_third_party(existing.origin) and existing.origin.distribution != origin.distribution:
                del self.entries[kind][spec.name]
                self.contested[(kind, spec.name)] = [existing.origin, origin]
                self.problems.append(
                    f"{kind} name {spec.name!r} is registered by two distributions, {_labels([existing.origin])} "
                    f"and {_labels([origin])}; both refused (uninstall one, or ask one to rename it)"
                )
                return
            self.problems.append(
                f"{where}: duplicate {kind} name {spec.name!r}, already registered by "
                f"{existing.origin.label} (entry point {existing.origin.entry_point!r}); ignored"
            )
            return
        self.entries[kind][spec.name] = Registered(spec, origin)

    def check_tasks(self) -> None:
        """Refuse (remove, as a problem naming the task and its plugin) every task whose protocol or dataset is not
        registered, or whose ``target`` is not among its protocol's declared ``targets``."""
        for name, entry in sorted(self.entries["task"].items()):
            task, where = entry.spec, f"{entry.origin.label} (entry point {entry.origin.entry_point!r})"
            problem = None
            if task.dataset not in self.entries["dataset"]:
                problem = f"its dataset {task.dataset!r} is not registered"
            elif task.protocol not in self.entries["protocol"]:
                problem = f"its protocol {task.protocol!r} is not registered"
            else:
                targets = self.entries["protocol"][task.protocol].spec.targets
                if targets and task.target not in targets:
                    problem = (f"its target {task.target!r} is not one its protocol {task.protocol!r} accepts "
                               f"({', '.join(targets)})")
            if problem is not None:
                del self.entries["task"][name]
                self.problems.append(f"{where}: task {name!r} refused: {problem}")


def _is_third_party(origin: Origin) -> bool:
    return origin.distribution not in ("built-in", "core")


def _labels(origins: list[Origin]) -> str:
    return " and ".join(f"{origin.label} (entry point {origin.entry_point!r})" for origin in origins)


def _origin_of(entry_point: EntryPoint) -> Origin:
    dist = entry_point.dist
    name = dist.metadata["Name"] if dist is not None else "unknown distribution"
    if name == BUILTIN_DISTRIBUTION:
        return Origin("built-in", dist.version, entry_point.name)
    return Origin(name, dist.version if dist is not None else "?", entry_point.name)


def _plugin_modules(registry: Registry) -> Iterable[tuple[ModuleType, Origin]]:
    for module_name in CORE_HOOK_MODULES:
        yield importlib.import_module(module_name), Origin("core", medvlp_bench.__version__, module_name)
    found = sorted(
        entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (_origin_of(ep).distribution != "built-in", ep.name),
    )
    for entry_point in found:
        origin = _origin_of(entry_point)
        try:
            yield entry_point.load(), origin
        except Exception as error:
            registry.problems.append(
                f"{origin.label} (entry point {entry_point.name!r} = {entry_point.value!r}) failed to import: "
                f"{type(error).__name__}: {error}"
            )


def load_registry() -> Registry:
    """Discover every plugin and collect its specs."""
    registry = Registry()
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for module, origin in _plugin_modules(registry):
        try:
            manager.register(module, name=f"{origin.distribution}:{origin.entry_point}")
        except Exception as error:
            registry.problems.append(f"{origin.label} (entry point {origin.entry_point!r}): {error}")
            continue
        _collect(registry, manager, module, origin)
    registry.check_tasks()
    return registry


def _collect(registry: Registry, manager: pluggy.PluginManager, module: ModuleType, origin: Origin) -> None:
    for kind, (hook_name, _) in KINDS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is not module:
                continue
            try:
                specs = impl.function()
            except Exception as error:
                registry.problems.append(
                    f"{origin.label} (entry point {origin.entry_point!r}): {hook_name} raised "
                    f"{type(error).__name__}: {error}"
                )
                continue
            for spec in specs or []:
                registry.add(kind, spec, origin)
