"""How the CLI reports failures: one red ``error:`` line on stderr and exit status 1, never a traceback.

Commands raise :class:`CliError` for problems they detect themselves; :func:`translated_errors`
turns what botocore and the native endpoint raise into the same shape, so every command reports
an unreachable server or a rejected request the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from rich.console import Console
from rich.markup import escape


class CliError(click.ClickException):
    """A failure to show the user as ``error: <message>`` (exit status 1)."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        """Print in red on stderr; ``escape`` because messages quote user input that may hold ``[``."""
        console = Console(file=file, stderr=file is None, soft_wrap=True, highlight=False)
        console.print(f"[bold red]error:[/bold red] {escape(self.format_message())}")


class ServerUnreachable(CliError):
    """Nothing answers at the endpoint: the most common mistake, so it says how to fix it."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"no genobatch server at {endpoint} (start one with: genobatch server)")


class ApiError(CliError):
    """The server rejected a request; ``code`` is the AWS error code (e.g. ``ClientException``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message_text = message
        super().__init__(f"{code}: {message}" if message else code)


def client_error(exc: ClientError) -> ApiError:
    """The ``<Code>: <Message>`` form of a botocore ``ClientError``."""
    error = exc.response.get("Error", {})
    code = error.get("Code") or "Error"
    message = error.get("Message") or ""
    return ApiError(code, message)


#: The server does not know the access key: most often another data directory's server.
UNKNOWN_KEY = "UnrecognizedClientException"


@contextmanager
def translated_errors(endpoint: Callable[[], str], unknown_key_hint: Callable[[], str] | None = None) -> Iterator[None]:
    """Re-raise transport and API exceptions as :class:`CliError`.

    ``endpoint`` is called only when a message needs it: it is resolved inside the command (from
    flags and ``server.json``), after this context is entered. ``unknown_key_hint`` explains an
    ``UnrecognizedClientException``, which by itself does not say which key and server are meant.
    """
    try:
        yield
    except (ClientError, ApiError) as exc:
        error = client_error(exc) if isinstance(exc, ClientError) else exc
        if error.code == UNKNOWN_KEY and unknown_key_hint is not None:
            raise ApiError(error.code, f"{error.message_text}\nhint: {unknown_key_hint()}") from None
        raise error from None
    except (EndpointConnectionError, ConnectTimeoutError):
        raise ServerUnreachable(endpoint()) from None
    except ReadTimeoutError:
        raise CliError(f"the server at {endpoint()} did not answer in time") from None
    except ConnectionClosedError:
        raise CliError(f"the server at {endpoint()} closed the connection") from None
    except ParamValidationError as exc:
        # botocore checks requests against the Batch model before sending; its report is readable.
        raise CliError(str(exc)) from None
