"""Lets list options take space-separated values after one flag, as the seed's CLI did
(``--tasks a b c``, ``-t a b c``), by rewriting them into click's repeated form (``--tasks a --tasks b``)."""

from __future__ import annotations

LIST_OPTIONS = ("--tasks", "-t")


def expand_list_options(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            out.extend(argv[i:])
            break
        if tok in LIST_OPTIONS:
            j = i + 1
            values = []
            while j < len(argv) and not argv[j].startswith("-"):
                values.append(argv[j])
                j += 1
            if not values:
                out.append(tok)  # let click report the missing value
            for v in values:
                out.extend([tok, v])
            i = j
            continue
        if any(tok.startswith(o + "=") for o in LIST_OPTIONS):
            opt, _, val = tok.partition("=")
            for v in val.split(","):
                out.extend([opt, v])
            i += 1
            continue
        out.append(tok)
        i += 1
    return out
