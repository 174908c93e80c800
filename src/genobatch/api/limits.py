"""AWS Batch's documented limits and value rules that the service model itself does not encode.

Shared by RegisterJobDefinition and SubmitJob; each check raises :class:`ClientException` naming
the field, before anything is written.
"""

from __future__ import annotations

import math
import re

from genobatch.api.errors import ClientException
from genobatch.api.model import operation_model
from genobatch.core.job import Resources
from genobatch.core.retry import validate_entry

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MAX_ATTEMPTS = 10
MAX_EVALUATE_ON_EXIT = 5
MIN_TIMEOUT_S = 60
#: The most tags one resource may carry: the model's bound on a tags map (50 to date). Validation
#: applies it to each request; TagResource must also apply it to the tags a resource has afterwards.
MAX_TAGS: int = operation_model("TagResource").input_shape.members["tags"].metadata["max"]
RESERVED_ENV_PREFIX = "AWS_BATCH"


def check_name(field: str, value: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ClientException(
            f"{field} must be 1-128 letters, numbers, hyphens and underscores, starting with a letter or number"
        )


def check_retry_strategy(field: str, strategy: dict | None) -> None:
    if not strategy:
        return
    attempts = strategy.get("attempts")
    if attempts is not None and not 1 <= attempts <= MAX_ATTEMPTS:
        raise ClientException(f"{field}.attempts must be between 1 and {MAX_ATTEMPTS}")
    entries = strategy.get("evaluateOnExit", [])
    if len(entries) > MAX_EVALUATE_ON_EXIT:
        raise ClientException(f"{field}.evaluateOnExit may have at most {MAX_EVALUATE_ON_EXIT} entries")
    for entry in entries:
        problem = validate_entry(entry)
        if problem:
            raise ClientException(f"{field}.{problem}")


def check_timeout(field: str, timeout: dict | None) -> None:
    seconds = (timeout or {}).get("attemptDurationSeconds")
    if seconds is not None and seconds < MIN_TIMEOUT_S:
        raise ClientException(f"{field}.attemptDurationSeconds must be at least {MIN_TIMEOUT_S} seconds")


def check_tags(field: str, tags: dict | None) -> None:
    if tags and len(tags) > MAX_TAGS:
        raise ClientException(f"{field}: at most {MAX_TAGS} tags")


def check_environment(field: str, environment: list[dict] | None) -> None:
    for item in environment or []:
        if item.get("name", "").startswith(RESERVED_ENV_PREFIX):
            raise ClientException(f"{field}: variable names starting with {RESERVED_ENV_PREFIX} are reserved")


#: The most any resource value may be: the model's Integer, as the store and scheduler count it.
MAX_RESOURCE_VALUE = 2**31 - 1


def _whole(field: str, kind: str, text: str, minimum: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ClientException(f"{field}: {kind} value {text[:32]!r} is not a number") from None
    # "nan", "inf" and "1e400" parse as floats that int() refuses: a bad value, not a server fault.
    if not math.isfinite(value) or value != int(value) or not minimum <= value <= MAX_RESOURCE_VALUE:
        raise ClientException(
            f"{field}: {kind} must be a whole number from {minimum} to {MAX_RESOURCE_VALUE}, got {text[:32]!r}"
        )
    return int(value)


def check_resource_requirements(field: str, requirements: list[dict] | None) -> None:
    seen = set()
    for item in requirements or []:
        kind = item["type"]
        if kind in seen:
            raise ClientException(f"{field}: {kind} is given more than once")
        seen.add(kind)
        if kind == "VCPU":
            _whole(field, kind, item["value"], 1)
        elif kind == "MEMORY":
            _whole(field, kind, item["value"], 4)
        elif kind == "GPU":
            _whole(field, kind, item["value"], 0)
        else:
            raise ClientException(f"{field}: resource type {kind} is not supported by the local backend")


def merge_requirements(base: list[dict] | None, override: list[dict] | None) -> list[dict]:
    """Override entries replace the definition's entries of the same type."""
    merged = {item["type"]: item for item in base or []}
    merged.update({item["type"]: item for item in override or []})
    return list(merged.values())


def resources_of(container: dict) -> Resources:
    """vCPUs, memory and GPUs of a container, from resourceRequirements or the legacy fields.

    Defaults when nothing is given: 1 vCPU and 2048 MiB (documented in the README).
    """
    values = {item["type"]: int(float(item["value"])) for item in container.get("resourceRequirements", [])}
    return Resources(
        vcpus=values.get("VCPU", container.get("vcpus") or 1),
        memory_mib=values.get("MEMORY", container.get("memory") or 2048),
        gpus=values.get("GPU", 0),
    )


def refuse_unsupported(request: dict, unsupported: dict[str, str]) -> None:
    """Refuse a request that sets a member genobatch cannot honour, rather than ignore it.

    ``unsupported`` maps member names to why they are refused.
    """
    for member, why in unsupported.items():
        if member in request:
            raise ClientException(f"{member} is not supported: {why}")
