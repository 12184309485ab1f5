"""Names that become paths inside a store (task names) are checked before anything is
written, so no name can reach outside the store folder or clash with the store's files."""

from __future__ import annotations

import re

from emonet.errors import ConfigError

# files and folders a store writes at its root (see emonet.store.metadata)
RESERVED = frozenset({"zarr.json", "store.json", "emonet-store.yaml", ".staging", ".lock"})
_ALLOWED = re.compile(r"^[^\W_][\w.+=-]*$")  # \w: any letter or digit, and _
MAX_LEN = 100
PARTITIONS = ("train", "devel", "test")  # a task's partitions, in this order


def check_task_name(name: str) -> str:
    """Returns ``name`` if it is a plain task name, else raises ConfigError naming the rule.

    A task name is a folder inside the store: letters, digits and ``_ . + = -``, starting
    with a letter or digit (so no ``/``, ``\\``, ``..``, leading dot or space), at most 100
    characters, and not one of the store's own file names."""
    if not isinstance(name, str) or not name:
        raise ConfigError("task name is empty; name the task with letters, digits, '_' or '-'")
    shown = repr(name)
    if name != name.strip():
        raise ConfigError(f"task name {shown} has leading or trailing spaces; remove them")
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"task name {shown} is a path, not a name; use a plain name without '/', '\\', '.' or '..'")
    if len(name) > MAX_LEN:
        raise ConfigError(f"task name {name[:20]!r}... is longer than {MAX_LEN} characters; shorten it")
    if name.lower() in RESERVED or name.lower().endswith((".json", ".yaml", ".tar", ".npz")):
        raise ConfigError(f"task name {shown} is the name of a store file; choose another name")
    if not _ALLOWED.match(name):
        raise ConfigError(
            f"task name {shown} may hold only letters, digits and '_ . + = -', starting with a letter or digit"
        )
    return name
