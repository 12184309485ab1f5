"""The command line as the user typed it. Lets list options take space-separated values after one
flag, as the original EmoNet CLI did (``--tasks a b c``, ``-t a b c``), by rewriting them into
click's repeated form (``--tasks a --tasks b``); tells which options the user gave."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LIST_OPTIONS = ("--tasks", "-t")


def list_option_names(command, argv: Sequence[str]) -> tuple[str, ...]:
    """The names of the options that take several values in the subcommand ``argv`` calls.

    Args:
        command: the root click group (``typer.main.get_command(app)``).
        argv: the command line after the program name.

    Returns:
        Every spelling (``--tasks``, ``-t``) of the subcommand's multiple-value options; none
        when ``argv`` names no known subcommand. Only those are expanded, so ``-t`` can mean
        ``--tasks`` in one command and the single ``--task`` in another.
    """
    sub = getattr(command, "commands", {}).get(argv[0]) if argv else None
    if sub is None:
        return ()
    return tuple(name for p in sub.params if getattr(p, "multiple", False) for name in p.opts)


def expand_list_options(argv: list[str], options: Sequence[str] = LIST_OPTIONS) -> list[str]:
    """Rewrites ``--tasks a b c`` and ``--tasks=a,b`` into ``--tasks a --tasks b --tasks c``.

    Args:
        argv: the command line after the program name.
        options: the option spellings that take several values.

    Returns:
        The rewritten command line; everything after ``--`` is left alone.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            out.extend(argv[i:])
            break
        if tok in options:
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
        if any(tok.startswith(o + "=") for o in options):
            opt, _, val = tok.partition("=")
            for v in val.split(","):
                out.extend([opt, v])
            i += 1
            continue
        out.append(tok)
        i += 1
    return out


def given_options(ctx) -> dict[str, Any]:
    """The options the user gave to the command ``ctx`` runs: typed on the command line or set
    through the environment, whatever their value (a default typed out counts), by parameter name.

    Args:
        ctx: the click context of the command (``typer.Context``).

    Returns:
        parameter name -> parsed value, in the command's order of parameters.
    """
    out = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)  # click's ParameterSource (typer vendors click)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            out[param.name] = ctx.params.get(param.name)
    return out


def long_name(ctx, name: str) -> str:
    """The longest spelling of the command's option ``name`` (``--epochs`` for ``epochs``)."""
    param = next(p for p in ctx.command.params if p.name == name)
    return max(param.opts, key=len)
