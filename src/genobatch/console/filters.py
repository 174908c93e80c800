"""Jinja filters for the console's pages: the run report's units, so both read the same."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jinja2 import Environment, Undefined

from genobatch.report import units


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _percent_value(value: float | None) -> str:
    """A percentage already in percent (``cpu_pct_of_request``), whole number; a dash when unknown."""
    return "–" if value is None else f"{value:.0f}%"


def _absent_is_none(function: Callable[..., str]) -> Callable[..., str]:
    """A field the API omits (AWS leaves ``stoppedAt`` out until it is known) formats as unknown."""

    def wrapped(value: Any, *args: Any) -> str:
        return function(None if isinstance(value, Undefined) else value, *args)

    return wrapped


def register(env: Environment) -> None:
    """Add the console's filters to ``env``."""
    filters = {
        "money": units.money,
        "duration": units.duration,
        "when": units.short_time,
        "size": units.size,
        "fraction": units.percent,
        "pct": _percent_value,
        "number": _number,
    }
    env.filters.update({name: _absent_is_none(function) for name, function in filters.items()})
    env.filters["pretty_json"] = _pretty_json
