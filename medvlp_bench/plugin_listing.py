"""The ``medvlp-bench plugins`` listing: every registered spec with its kind, origin and description."""

from __future__ import annotations

from tabulate import tabulate

from medvlp_bench.registry import KINDS, Registry


def _description(spec) -> str:
    for attribute in ("description", "title"):
        text = getattr(spec, attribute, None)
        if text:
            return text
    return ""


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
