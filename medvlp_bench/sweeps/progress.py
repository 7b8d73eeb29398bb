"""A live progress view of a sweep on stderr: cells done / running / failed, elapsed time, ETA.

ETA = mean wall time of the cells finished in this sweep x cells left / parallel slots (none before the first cell
finishes). On a terminal the line is redrawn in place every second; otherwise (logs, CI) a line is printed when a
count changes, at most every ``quiet_seconds``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Optional, TextIO

from medvlp_bench.sweeps.jobs import Job, JobResult


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """Counts of a running sweep; call :meth:`started` and :meth:`finished` from any thread."""

    def __init__(self, cells: int, pretrainings: int, slots: int, stream: Optional[TextIO] = None,
                 quiet_seconds: float = 30.0):
        self.cells, self.pretrainings, self.slots = cells, pretrainings, max(1, slots)
        self.stream = stream or sys.stderr
        self.quiet_seconds = quiet_seconds
        self.start = time.monotonic()
        self.running: set[str] = set()
        self.done = self.failed = self.pretrained = self.pretrain_failed = 0
        self.cell_seconds: list[float] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._last_line, self._last_print = "", 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> "Progress":
        self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._ticker.join()
        self._render(force=True)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def started(self, job: Job) -> None:
        with self._lock:
            self.running.add(job.id)
        self._render()

    def finished(self, result: JobResult) -> None:
        with self._lock:
            self.running.discard(result.job.id)
            if result.job.kind == "pretrain":
                self.pretrained += result.ok
                self.pretrain_failed += not result.ok
            elif result.ok:
                self.done += 1
                if result.seconds > 0:
                    self.cell_seconds.append(result.seconds)
            else:
                self.failed += 1
        self._render()

    def eta_seconds(self) -> Optional[float]:
        """Estimated seconds until every cell has finished (``None`` before a cell finished)."""
        if not self.cell_seconds:
            return None
        left = self.cells - self.done - self.failed
        return sum(self.cell_seconds) / len(self.cell_seconds) * left / self.slots

    def line(self) -> str:
        with self._lock:
            running = len(self.running)
            parts = [f"cells {self.done + self.failed}/{self.cells} finished ({self.done} done, {self.failed} failed)",
                     f"{running} running"]
            if self.pretrainings:
                parts.append(f"pretraining {self.pretrained + self.pretrain_failed}/{self.pretrainings}")
            eta = self.eta_seconds()
        parts.append(f"elapsed {format_duration(time.monotonic() - self.start)}")
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA -")
        return "sweep: " + ", ".join(parts)

    def _counts(self) -> str:
        return self.line().split(", elapsed")[0]

    def _render(self, force: bool = False) -> None:
        with self._lock:
            self._render_locked(force)

    def _render_locked(self, force: bool) -> None:
        now = time.monotonic()
        line = self.line()
        if self._tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            return
        counts = self._counts()
        if force or (counts != self._last_line and now - self._last_print >= self.quiet_seconds) \
                or (self._last_print == 0.0):
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_line, self._last_print = counts, now

    def _tick(self) -> None:
        while not self._stop.wait(1.0 if self._tty else self.quiet_seconds):
            self._render()
