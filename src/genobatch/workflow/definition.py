"""Parse and validate Amazon States Language definitions.

INTERFACE COMMIT: ``parse_definition``, ``StateMachineDefinition`` and ``InvalidDefinition`` are
the stable names; full validation follows in later commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class InvalidDefinition(ValueError):
    """The definition is not valid ASL; the message names the state and the problem like AWS's
    InvalidDefinition (e.g. "SCHEMA_VALIDATION_FAILED: Missing required field 'Next' at /States/Align")."""


@dataclass
class StateMachineDefinition:
    """A parsed, validated definition. ``raw`` is the definition as parsed JSON."""

    raw: dict[str, Any]


def parse_definition(text: str) -> StateMachineDefinition:
    """Parse and validate ``text`` (ASL JSON); raise InvalidDefinition naming state and problem."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDefinition(f"INVALID_JSON_DESCRIPTION: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidDefinition("SCHEMA_VALIDATION_FAILED: the definition must be a JSON object at /")
    return StateMachineDefinition(raw=raw)
