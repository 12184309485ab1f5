"""User-facing errors: one clear line, no traceback, non-zero exit from the CLI."""

from __future__ import annotations


class EmoNetError(Exception):
    """An error caused by input the user can fix. Its message is one line that names the
    file or csv row and says what to do."""

    exit_code = 2


class InputError(EmoNetError):
    """A problem with a csv row or an audio file. ``--skip-bad`` may skip these."""

    def __init__(self, message: str, *, source: str = "", row: int | None = None, file: str = ""):
        super().__init__(message)
        self.source = source  # csv path
        self.row = row  # 1-based line number in the csv (header = line 1)
        self.file = file  # the csv's file key

    def as_record(self) -> dict:
        return {"csv": self.source, "row": self.row, "file": self.file, "reason": str(self)}


class StoreError(EmoNetError):
    """The store on disk conflicts with what was asked (other feature config, other csv)."""
