"""The request members and enum values genobatch has reviewed, so newer ones are refused, not ignored.

botocore's model is the schema of record, but genobatch supports a range of botocore releases, and
each release can add members (``computeResources.capacityTags``) or enum values
(``ECS_MANAGED_INSTANCES``) to the operations genobatch already serves. The model alone would
accept them, and genobatch would silently ignore what it was never written to honour. So the input
members and enum values of every served operation are recorded in ``reviewed_model.json``, taken
from the botocore release genobatch was reviewed against; anything else in a request is refused
with a ClientException that names it.

After reviewing a newer botocore (see ``scripts/lock.sh``), refresh the record with
``python -m genobatch.api.reviewed --write [service ...]`` run with the reviewed botocore
importable; naming services refreshes only those, and the record keeps the botocore release
each service was reviewed against (Step Functions was added later, against a newer release).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from botocore.model import Shape

from genobatch.api.errors import ClientException

RECORD = Path(__file__).with_name("reviewed_model.json")
_MAX_DEPTH = 40  # the Batch and Logs input shapes are not recursive; this only guards the walk


def _walk_shape(
    shape: Shape, path: str, members: dict[str, list[str]], enums: dict[str, list[str]], depth: int
) -> None:
    if depth > _MAX_DEPTH:
        return
    kind = shape.type_name
    if kind == "structure":
        if getattr(shape, "is_document_type", False):
            return
        members[path] = sorted(shape.members)
        for name, member in shape.members.items():
            _walk_shape(member, _child(path, name), members, enums, depth + 1)
    elif kind == "list":
        _walk_shape(shape.member, path + "[]", members, enums, depth + 1)
    elif kind == "map":
        _walk_shape(shape.value, path + "{}", members, enums, depth + 1)
    elif kind == "string" and shape.enum:
        enums[path] = sorted(shape.enum)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def snapshot(service_model: Any, operations: Iterable[str]) -> dict[str, Any]:
    """Every input member path and enum value of ``operations`` in ``service_model``."""
    result: dict[str, Any] = {}
    for operation in sorted(operations):
        members: dict[str, list[str]] = {}
        enums: dict[str, list[str]] = {}
        input_shape = service_model.operation_model(operation).input_shape
        if input_shape is not None:
            _walk_shape(input_shape, "", members, enums, 0)
        result[operation] = {"members": members, "enums": enums}
    return result


@cache
def _record() -> dict[str, Any]:
    return json.loads(RECORD.read_text())


def reviewed_operations(service: str) -> set[str]:
    """The operations of ``service`` whose members were reviewed."""
    return set(_record()["services"].get(service, {}))


def unreviewed(operation: str, params: Mapping[str, Any], service: str = "batch") -> list[str]:
    """The members and enum values in ``params`` that genobatch has not reviewed, as messages."""
    reviewed = _record()["services"].get(service, {}).get(operation)
    if reviewed is None:
        return []  # not a served operation: refused before its parameters are read
    problems: list[str] = []
    _walk_value(params, "", reviewed["members"], reviewed["enums"], problems)
    return problems


def _walk_value(
    value: Any, path: str, members: dict[str, list[str]], enums: dict[str, list[str]], problems: list[str]
) -> None:
    if isinstance(value, dict):
        if path in members:
            known = members[path]
            for name, item in value.items():
                where = _child(path, name)
                if name in known:
                    _walk_value(item, where, members, enums, problems)
                else:
                    problems.append(f"{where} is not supported by genobatch (newer than the API it implements)")
        else:  # a map: its keys are data, its values have the path's {} shape
            for item in value.values():
                _walk_value(item, path + "{}", members, enums, problems)
    elif isinstance(value, list):
        for item in value:
            _walk_value(item, path + "[]", members, enums, problems)
    elif isinstance(value, str) and path in enums and value not in enums[path]:
        problems.append(
            f"{path.replace('[]', '').replace('{}', '')}: {value!r} is not supported by genobatch "
            f"(supported: {', '.join(enums[path])})"
        )


def refuse_unreviewed(operation: str, params: Mapping[str, Any], service: str = "batch") -> None:
    """Raise ClientException naming every unreviewed member or enum value in ``params``."""
    problems = unreviewed(operation, params, service)
    if problems:
        raise ClientException("; ".join(problems))


def _write(only: list[str]) -> None:
    import botocore
    import botocore.session

    from genobatch.api.app import HANDLERS
    from genobatch.api.logs import OPERATIONS
    from genobatch.api.stepfunctions import OPERATIONS as SFN_OPERATIONS

    session = botocore.session.get_session()
    served = {"batch": HANDLERS, "logs": OPERATIONS, "stepfunctions": SFN_OPERATIONS}
    unknown = set(only) - set(served)
    if unknown:
        sys.exit(f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(served)}")
    record = json.loads(RECORD.read_text()) if only else {"services": {}, "reviewed_with": {}}
    record.setdefault("reviewed_with", {})
    for service in only or served:
        record["services"][service] = snapshot(session.get_service_model(service), served[service])
        record["reviewed_with"][service] = botocore.__version__
    if not only:
        record["botocore"] = botocore.__version__
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {', '.join(only or served)} to {RECORD} from botocore {botocore.__version__}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--write"]:
        sys.exit("usage: python -m genobatch.api.reviewed --write [service ...]  (the reviewed botocore importable)")
    _write(sys.argv[2:])
