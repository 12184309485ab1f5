"""The errors EmoNet raises for problems a user can fix.

Every one is an :class:`EmoNetError`: its message is one line that names the file, csv row,
option or parameter at fault and says what to do. The CLI prints that line and exits with
``exit_code``; anything else that escapes is a bug and keeps its traceback.

    EmoNetError
    ├── ConfigError          an invalid option or config value (feature, model, training)
    ├── InputError           a csv row or audio file (``--skip-bad`` may skip these)
    ├── StoreError           a feature store: missing, conflicting, locked
    │   └── StoreCorruptError  stored bytes that fail their checksum or are missing
    ├── ModelError           a model or its architecture does not fit what was asked
    │   └── CheckpointError  a file that is not a readable EmoNet checkpoint
    ├── UnknownTaskError     a task name that the store or model does not have
    └── TrainingError        training cannot go on (non-finite loss, ...)
"""

from __future__ import annotations


class EmoNetError(Exception):
    """An error caused by input the user can fix. Its message is one line that names the
    file or csv row and says what to do."""

    exit_code = 2


class ConfigError(EmoNetError, ValueError):
    """An invalid value of an option or of a feature, model or training config."""


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
    """The store on disk is missing or conflicts with what was asked (other feature config,
    other csv, another writer holds it)."""


class StoreCorruptError(StoreError):
    """Stored bytes fail their checksum, or a stored block is missing."""

    exit_code = 3


class ModelError(EmoNetError, ValueError):
    """A model, or its architecture, does not fit what was asked."""


class CheckpointError(ModelError):
    """A file that is not a readable EmoNet checkpoint (or of the wrong kind)."""


class UnknownTaskError(EmoNetError, KeyError):
    """A task name the store or model does not have; the message names the ones it has."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else "unknown task"


class TrainingError(EmoNetError):
    """Training cannot go on (a non-finite loss, an empty partition, ...)."""
