"""Errors the harness reports to users without a traceback."""

from __future__ import annotations


class MedvlpError(Exception):
    """Base class of errors that the CLI prints as a one-paragraph message (exit status 1)."""


class DataError(MedvlpError):
    """A raw download or an image is missing or malformed.

    The message always names the file and, where there is one, the CSV/TXT row (1-based, header = row 1).
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None):
        where = ""
        if file is not None:
            where = f"{file}" + (f", row {row}" if row is not None else "") + ": "
        super().__init__(where + message)
        self.file = file
        self.row = row


class WeightsNotFoundError(MedvlpError):
    """Pretrained weights a method needs are not available locally (nothing is downloaded at run time)."""


class UnknownNameError(MedvlpError):
    """An unknown plugin name (method, task, dataset, encoder); the CLI exits with status 2."""
