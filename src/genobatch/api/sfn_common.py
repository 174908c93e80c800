"""What the Step Functions operations share: error codes, ARNs, names, timestamps and page tokens."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from genobatch.api.errors import ApiError
from genobatch.config import Settings

SERVICE = "stepfunctions"  # botocore's model name; SigV4 scope and ARNs say "states"
ARN_SERVICE = "states"


class _SfnError(ApiError):
    status = 400


class ValidationException(_SfnError):
    code = "ValidationException"


class InvalidArn(_SfnError):
    code = "InvalidArn"


class InvalidName(_SfnError):
    code = "InvalidName"


class InvalidDefinitionError(_SfnError):
    code = "InvalidDefinition"


class InvalidExecutionInput(_SfnError):
    code = "InvalidExecutionInput"


class InvalidToken(_SfnError):
    code = "InvalidToken"


class StateMachineDoesNotExist(_SfnError):
    code = "StateMachineDoesNotExist"


class StateMachineAlreadyExists(_SfnError):
    code = "StateMachineAlreadyExists"


class StateMachineDeleting(_SfnError):
    code = "StateMachineDeleting"


class StateMachineTypeNotSupported(_SfnError):
    code = "StateMachineTypeNotSupported"


class ExecutionDoesNotExist(_SfnError):
    code = "ExecutionDoesNotExist"


class ExecutionAlreadyExists(_SfnError):
    code = "ExecutionAlreadyExists"


class ExecutionNotRedrivable(_SfnError):
    code = "ExecutionNotRedrivable"


class UnsupportedOperation(_SfnError):
    code = "UnsupportedOperation"


class UnknownOperation(_SfnError):
    code = "UnknownOperationException"


class ServiceUnavailable(ApiError):
    status = 500
    code = "ServiceUnavailable"


@dataclass
class ReadContext:
    """What a read operation gets: a store connection and the clock (ms)."""

    conn: Connection
    settings: Settings
    now_ms: int

    @property
    def now(self) -> float:
        return self.now_ms / 1000


# ----------------------------------------------------------------------------- names and ARNs

# API_CreateStateMachine / API_StartExecution: 1-80 characters, none of white space, brackets,
# wildcards, special characters or control characters.
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def check_name(kind: str, name: str) -> None:
    if not 1 <= len(name) <= 80 or _BAD_NAME.search(name):
        raise InvalidName(
            f"Invalid Name: '{name}' ({kind} names are 1 to 80 characters without white space, brackets, "
            'wildcards ? *, control characters or any of " # % \\ ^ | ~ ` $ & , ; : /)'
        )


def arn_prefix(settings: Settings) -> str:
    return f"arn:aws:{ARN_SERVICE}:{settings.region}:{settings.account_id}:"


def state_machine_arn(settings: Settings, name: str) -> str:
    return f"{arn_prefix(settings)}stateMachine:{name}"


def execution_arn(settings: Settings, machine: str, name: str) -> str:
    return f"{arn_prefix(settings)}execution:{machine}:{name}"


def parse_arn(arn: str, kind: str, parts: int) -> list[str]:
    """The name parts of a ``stateMachine`` (1 part) or ``execution`` (2 parts) ARN; InvalidArn otherwise."""
    pieces = arn.split(":")
    if len(pieces) != 6 + parts or pieces[:3] != ["arn", "aws", ARN_SERVICE] or not all(pieces[3:5]):
        raise InvalidArn(f"Invalid Arn: '{arn}' is not a Step Functions {kind} ARN")
    if pieces[5] != kind:
        raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {pieces[5]}'")
    return pieces[6:]


# ----------------------------------------------------------------------------- values


def seconds(ms: int | None) -> float | None:
    """A stored epoch-ms time as the JSON protocol's timestamp (epoch seconds)."""
    return None if ms is None else ms / 1000


def encode_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        raise InvalidToken(f"Invalid Token: '{token[:64]}'") from None


def page_size(request: dict, default: int = 100, maximum: int = 1000) -> int:
    """``maxResults``: 0 means the default, as AWS reads it."""
    value = request.get("maxResults") or default
    if value > maximum:
        raise ValidationException(f"maxResults must be at most {maximum}, got {value}")
    return value
