"""The end of a sweep: the summary printed for the user, the failed-cells file, and the leaderboard.

``DIR/failed.json`` maps the id of each cell that failed with an error to ``{"reason", "log"}``; the next sweep
skips those cells unless ``--retry-failed`` (an error usually repeats). Cells ended by a signal (a killed worker)
are not listed there: they count as interrupted, and the next sweep runs them again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from medvlp_bench.sweeps.jobs import JobResult

FAILED_FILE = "failed.json"


def read_failed(out_dir: Path) -> dict[str, dict]:
    path = Path(out_dir) / FAILED_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def update_failed(out_dir: Path, results: Iterable[JobResult]) -> dict[str, dict]:
    """Record this sweep's failed cells and forget those that succeeded or were interrupted; written atomically."""
    failed = read_failed(out_dir)
    for result in results:
        if result.job.kind != "cell":
            continue
        if result.ok or result.interrupted:
            failed.pop(result.job.id, None)
        else:
            failed[result.job.id] = {"reason": result.reason, "log": str(result.job.log)}
    path = Path(out_dir) / FAILED_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(failed, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return failed


def print_summary(results: list[JobResult], skipped: int, skipped_failed: dict[str, dict], stream: TextIO,
                  written: Sequence[Path] = ()) -> None:
    """Done (ran now and already there), skipped, failed (with the log to read) and the results ``written``
    (leaderboard, report)."""
    cells = [result for result in results if result.job.kind == "cell"]
    ran = sum(result.ok for result in cells)
    failed = [result for result in results if not result.ok]
    print(f"sweep finished: {ran} cell(s) run, {skipped} skipped (record already there), "
          f"{sum(not r.ok for r in cells)} failed", file=stream)
    for result in failed:
        print(f"  FAILED {result.job.id}: {result.reason}; log: {result.job.log}", file=stream)
    for cell_id, entry in sorted(skipped_failed.items()):
        print(f"  not retried {cell_id} (failed before: {entry['reason']}; log: {entry['log']}; "
              "--retry-failed runs it again)", file=stream)
    for path in written:
        print(f"{'report' if path.parent.name == 'report' else 'leaderboard'}: {path}", file=stream)
