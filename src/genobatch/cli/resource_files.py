"""Resource files for ``create`` and ``register``: the AWS API request bodies, in JSON or YAML.

A file holds one request (a mapping) or several (a list of mappings), so a whole setup of compute
environments, queues or definitions can live in one file. ``-`` reads standard input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from genobatch.cli.errors import CliError


class ResourceFileError(CliError):
    """A resource file that cannot be used; the message always names the file."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")


def read_source(source: str) -> str:
    """The text of ``source`` (a path, or ``-`` for stdin)."""
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.exists():
        raise ResourceFileError(source, "no such file")
    if path.is_dir():
        raise ResourceFileError(source, "is a directory, not a file")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResourceFileError(source, f"cannot read: {exc}") from None


def parse_json(source: str, content: str) -> Any:
    """Decode JSON, reporting the line and column of a syntax error."""
    try:
        return json.loads(content)
    except json.JSONDecodeError as exc:
        raise ResourceFileError(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def parse_yaml(source: str, content: str) -> Any:
    """Decode YAML (a superset of JSON), reporting where a syntax error is."""
    try:
        return yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ResourceFileError(source, f"invalid YAML{where}: {problem}") from None


def parse(source: str, content: str) -> Any:
    """JSON for ``*.json``, YAML otherwise (which also reads JSON from stdin or other names)."""
    if source.lower().endswith(".json"):
        return parse_json(source, content)
    return parse_yaml(source, content)


def load_requests(source: str) -> list[dict[str, Any]]:
    """The request bodies in ``source``: a mapping, or a non-empty list of mappings."""
    document = parse(source, read_source(source))
    if document is None:
        raise ResourceFileError(source, "is empty")
    requests = document if isinstance(document, list) else [document]
    if not requests:
        raise ResourceFileError(source, "holds an empty list")
    for number, request in enumerate(requests, start=1):
        if not isinstance(request, dict):
            where = f"item {number}" if isinstance(document, list) else "the document"
            raise ResourceFileError(
                source, f"{where} is a {type(request).__name__}; expected a mapping of request fields"
            )
    return requests
