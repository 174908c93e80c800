"""Plan files: YAML documents validated by a pydantic model, refused with every invalid field named.

The benchmark plan (:mod:`genobatch.benchmark.plan`) and the simulation plan
(:mod:`genobatch.simulate.plan`) are read the same way: a problem is ``(field, what is wrong)`` with
the field written as ``tools[0].resources.vcpus``, and an unknown key gets "did you mean ...?".
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class PlanError(ValueError):
    """An invalid plan: ``problems`` lists ``(field, problem)``, the field as ``tools[0].resources.vcpus``.

    Each kind of plan subclasses it, naming itself in ``kind``.
    """

    kind = "plan"

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source, self.problems = source, problems
        lines = "\n".join(f"  {where}: {problem}" if where else f"  {problem}" for where, problem in problems)
        super().__init__(f"{source}: invalid {self.kind}\n{lines}")


def _allowed(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names at ``loc``'s parent, for "did you mean" on an unknown key."""
    model: Any = root
    for part in (p for p in loc[:-1] if isinstance(p, str)):
        fields = getattr(model, "model_fields", {})
        model = fields[part].annotation if part in fields else None
        while get_origin(model) is not None:  # list[Tool], Tool | None -> Tool
            model = next((a for a in get_args(model) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return sorted(getattr(model, "model_fields", {}))


def field_problems(error: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """pydantic's errors as ``(field, problem)`` pairs a person can act on."""
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required, but missing"
        elif item["type"] == "extra_forbidden":
            allowed = _allowed(root, loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown field" + (f"; did you mean {close[0]}?" if close else "")
            message += f" (allowed: {', '.join(allowed)})" if allowed else ""
        problems.append((where, message))
    return problems


def validate_plan(
    model: type[Model], document: Any, base_dir: str | Path, source: str, members: str, error: type[PlanError]
) -> Model:
    """Validate a plan document (the YAML's data) against ``model``; relative paths resolve against ``base_dir``.

    ``members`` names the plan's top-level keys for the message when the document is not a mapping;
    problems are raised as ``error`` (the plan kind's :class:`PlanError`).
    """
    if not isinstance(document, dict):
        raise error(source, [("", f"a plan is a mapping of {members}, ..., not {document!r}")])
    try:
        return model.model_validate(document, context={"base_dir": Path(base_dir)})
    except ValidationError as invalid:
        raise error(source, field_problems(invalid, model)) from None


def read_plan_document(path: Path, error: type[PlanError]) -> Any:
    """The YAML data of the plan file at ``path``; ``error`` if it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as problem:
        raise error(str(path), [("", f"cannot read: {problem.strerror or problem}")]) from None
    except yaml.YAMLError as problem:
        raise error(str(path), [("", f"not valid YAML: {problem}")]) from None
