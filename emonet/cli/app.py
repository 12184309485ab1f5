"""The ``emonet`` command line: a thin layer over the Python API.

This module holds only the root Typer app, the registration of the command groups (one module
each under ``emonet/cli/``) and :func:`main`, the console-script entry point, which is the one
place where errors become a one-line message and an exit code."""

from __future__ import annotations

import os
import sys

import typer

from emonet.cli import cross_corpus, demo, evaluate, extract, info, model, predict, run, task, train, verify
from emonet.cli.argv import expand_list_options, list_option_names
from emonet.cli.console import err
from emonet.cli.signals import Terminated, signals_raise
from emonet.errors import EmoNetError

PIPE_CLOSED_EXIT = 141  # 128 + SIGPIPE, what a tool killed by the closed pipe would return
RESUME_HINT = "interrupted: re-run the same command to resume; finished work is kept"

app = typer.Typer(
    name="emonet",
    help="Multi-corpus audio classification: extract log-mel stores, train residual-adapter ResNets, evaluate.",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:  # bare `emonet`: the help, as a usage error's exit code
        help_text = ctx.get_help()  # typer's rich help prints itself and returns ""
        if help_text:
            typer.echo(help_text)
        raise typer.Exit(2)


app.command("demo-data")(demo.demo_data)
app.command("extract")(extract.extract)
app.command("init-model")(model.init_model)
app.command("info")(info.info)
app.command("train")(train.train)
app.command("predict")(predict.predict)
app.command("evaluate")(evaluate.evaluate)
app.command("cross-corpus")(cross_corpus.cross_corpus)
app.command("run")(run.run)
app.add_typer(task.app, name="task")
app.command("verify")(verify.verify)


def _one_line(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emonet`` console script.

    Args:
        argv: the command line after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0, an :class:`EmoNetError`'s ``exit_code`` (its one-line message on
        stderr), 2 for a usage error (one line naming the help to read), 130 after Ctrl-C and
        143 after SIGTERM, 141 without a word when the reader of stdout has gone (``| head``).
        Any other exception is a bug and propagates with its traceback.
    """
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not later at interpreter exit
        return code
    except BrokenPipeError:  # `emonet ... | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        return PIPE_CLOSED_EXIT
    except SystemExit as exc:  # rich's console, on a closed pipe, points stdout at devnull and exits 1
        if _stdout_is_devnull():
            return PIPE_CLOSED_EXIT
        raise exc


def _stdout_is_devnull() -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
    except (OSError, ValueError):
        return False


def _run(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    args = expand_list_options(args, list_option_names(command, args))
    try:
        with signals_raise(), command.make_context("emonet", args) as ctx:
            command.invoke(ctx)
    except EmoNetError as exc:
        _one_line(str(exc))
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as Terminated
        err.print(RESUME_HINT, highlight=False)
        return Terminated.exit_code if isinstance(exc, Terminated) else 130
    except typer.Exit as exc:  # --help, or a command that exits early
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    except typer.TyperException as exc:  # click's usage errors: unknown option, bad or missing value
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path} --help" if ctx is not None else "emonet --help"
        _one_line(f"{' '.join(exc.format_message().split()).rstrip('.')}; see '{where}'")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
