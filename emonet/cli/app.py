"""The ``emonet`` command line: a thin layer over the Python API.

This module holds only the root Typer app, the registration of the command groups (one module
each under ``emonet/cli/``) and :func:`main`, the console-script entry point."""

from __future__ import annotations

import sys

import typer

from emonet.cli import demo, extract, info, model, verify
from emonet.cli.argv import expand_list_options
from emonet.cli.console import err
from emonet.errors import EmoNetError

app = typer.Typer(
    name="emonet",
    help="Multi-corpus audio classification: extract log-mel stores, train residual-adapter ResNets, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("demo-data")(demo.demo_data)
app.command("extract")(extract.extract)
app.command("init-model")(model.init_model)
app.command("info")(info.info)
app.command("verify")(verify.verify)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emonet`` console script."""
    args = expand_list_options(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="emonet", standalone_mode=False)
    except EmoNetError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyError as exc:  # unknown task/partition from the store API
        err.print(f"[bold red]error:[/] {exc.args[0] if exc.args else exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: re-run the same command to resume; finished work is kept")
        return 130
    except OSError as exc:  # the filesystem said no: a path under a file, no permission, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(
            f"[bold red]error:[/] {where}{exc.strerror or exc}; check the path, its permissions and free space "
            "(finished work is kept; re-run to resume)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
            show = getattr(exc, "show", None)  # bare `emonet` or `emonet extract`: the help
            if show is not None:
                show()
            return int(getattr(exc, "exit_code", 2))
        # a usage error (unknown option, missing or bad value): one line and where to look
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path} --help" if ctx is not None else "emonet --help"
        msg = " ".join(exc.format_message().split()).rstrip(".")
        err.print(f"[bold red]error:[/] {msg}; see '{where}'", highlight=False, soft_wrap=True, markup=True)
        return int(getattr(exc, "exit_code", 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
