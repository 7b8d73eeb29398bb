"""The ``medvlp-bench plugins`` listing: every registered spec with its kind, origin and description.

The JSON rows of methods and protocols also carry their declared options (name, default, type, choices, help), and a
protocol's version, targets and metrics, so a user can see what ``--option`` / ``--method-option`` accept.
"""

from __future__ import annotations

from tabulate import tabulate

from medvlp_bench.registry import KINDS, Registry


def _description(spec) -> str:
    for attribute in ("description", "title"):
        text = getattr(spec, attribute, None)
        if text:
            return text
    return ""


def _declared_options(spec) -> list[dict]:
    """The spec's declared options as JSON-able dicts (names only for a protocol that declares bare names)."""
    rows = []
    for option in getattr(spec, "options", None) or ():
        if isinstance(option, str):
            rows.append({"name": option})
            continue
        kind = option.type or type(option.default)
        rows.append({
            "name": option.name, "default": option.default, "help": option.help,
            "type": getattr(kind, "__name__", str(kind)),
            "choices": list(option.choices) if option.choices is not None else None,
        })
    return rows


def listing_rows(registry: Registry) -> list[dict]:
    """One dict per registered spec: kind, name, origin (built-in / core / distribution version), entry point."""
    rows = []
    for kind in KINDS:
        for name in registry.names(kind):
            entry = registry.entries[kind][name]
            row = {
                "kind": kind,
                "name": name,
                "origin": entry.origin.label,
                "distribution": entry.origin.distribution,
                "version": entry.origin.version,
                "entry_point": entry.origin.entry_point,
                "description": _description(entry.spec),
            }
            if kind == "task":
                row.update(dataset=entry.spec.dataset, protocol=entry.spec.protocol, metric=entry.spec.primary_metric)
            if kind == "method":
                row.update(options=_declared_options(entry.spec))
            if kind == "protocol":
                row.update(options=_declared_options(entry.spec), protocol_version=entry.spec.version,
                           targets=list(entry.spec.targets), metrics=list(entry.spec.metrics))
            rows.append(row)
    return rows


def render_listing(registry: Registry) -> str:
    """A plain-text table per kind, then the problems met while loading plugins."""
    blocks = []
    rows = listing_rows(registry)
    for kind in KINDS:
        table = [[r["name"], r["origin"], r["description"]] for r in rows if r["kind"] == kind]
        blocks.append(f"{kind}s:\n" + tabulate(table, headers=["name", "from", "description"], tablefmt="simple"))
    if registry.problems:
        blocks.append("problems:\n" + "\n".join(f"  - {p}" for p in registry.problems))
    return "\n\n".join(blocks)
