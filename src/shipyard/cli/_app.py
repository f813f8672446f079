"""The root command group: global options, and the one place errors become exit codes."""

from __future__ import annotations

import dataclasses
import sys
from typing import IO, TYPE_CHECKING, Any

import click

from shipyard._version import __version__
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.tracking import Client

EXIT_ERROR = 1
EXIT_USAGE = 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


class UserError(click.ClickException):
    """A :class:`ShipyardError`, shown as ``error: <message> <hint>``."""

    exit_code = EXIT_ERROR

    def __init__(self, error: ShipyardError) -> None:
        text = f"{error.message} {error.hint}" if error.hint else error.message
        super().__init__(_one_line(text))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", file=file or sys.stderr)


class UnexpectedError(UserError):
    def __init__(self, error: BaseException) -> None:
        click.ClickException.__init__(
            self,
            _one_line(
                f"unexpected {type(error).__name__}: {error} "
                "(rerun with --debug to see the traceback)"
            ),
        )


class OneLineUsageError(click.UsageError):
    """Click's usage error, without the usage text: one line and a pointer to --help."""

    exit_code = EXIT_USAGE

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(_one_line(error.format_message()), error.ctx)

    def show(self, file: IO[Any] | None = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"error: {self.message}{hint}", file=file or sys.stderr)


def _translate(error: BaseException, *, debug: bool) -> BaseException:
    """The exception to raise instead of ``error`` (``error`` itself to let it through)."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError | OneLineUsageError):
        return error
    if isinstance(error, click.UsageError):
        return OneLineUsageError(error)
    if isinstance(error, click.ClickException | click.exceptions.Exit | click.Abort):
        return error
    if isinstance(error, BrokenPipeError):
        return error  # `shipyard ... | head`: click quiets it
    if debug:
        return error
    if isinstance(error, ShipyardError):
        return UserError(error)
    if isinstance(error, Exception):
        return UnexpectedError(error)
    return error  # KeyboardInterrupt, SystemExit: click and Python handle them


class ShipyardGroup(click.Group):
    """A group that turns library errors into one line and an exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except Exception as exc:
            translated = _translate(exc, debug=False)
            if translated is exc:
                raise
            raise translated from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            translated = _translate(exc, debug=bool(ctx.params.get("debug")))
            if translated is exc:
                raise
            raise translated from exc


@dataclasses.dataclass
class State:
    """What the global options say; builds the client when a command first needs it."""

    uri: str | None = None
    home: str | None = None
    debug: bool = False
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from shipyard.config import Settings
            from shipyard.tracking import Client

            self._client = Client(settings=Settings.load(uri=self.uri, home=self.home))
        return self._client


pass_state = click.make_pass_decorator(State)


@click.group(cls=ShipyardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="shipyard")
@click.option(
    "--uri",
    metavar="URI",
    help="Metadata store, e.g. sqlite:///path/shipyard.db or postgresql+psycopg://user@host/db "
    "(default: SHIPYARD_URI, then <home>/shipyard.db).",
)
@click.option(
    "--home",
    metavar="DIR",
    help="Folder of the embedded store and blobs (default: SHIPYARD_HOME, then ./.shipyard).",
)
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.pass_context
def cli(ctx: click.Context, uri: str | None, home: str | None, debug: bool) -> None:
    """Shipyard: the whole MLOps loop in one install."""
    ctx.obj = State(uri=uri, home=home, debug=debug)


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``shipyard`` console script."""
    cli.main(args=args, prog_name="shipyard")
