"""constraints.txt, the pinned set the README's commands and CI install, agrees with pyproject.toml:
every dependency of every extra is pinned, to a version inside pyproject's range. A range changed
without re-running scripts/lock.sh fails here rather than as a resolver error on a fresh machine."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, Version]:
    """constraints.txt as {canonical name: pinned version}; every non-comment line must be an exact pin."""
    pinned: dict[str, Version] = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"constraints.txt:{number}: {line!r} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in pinned, f"constraints.txt:{number}: {requirement.name} pinned twice"
        pinned[name] = Version(spec.version)
    return pinned


def test_every_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pinned = pins()
    assert canonicalize_name(project["name"]) not in pinned  # the project itself is installed from the tree
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not pinned in constraints.txt: run scripts/lock.sh"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pinned[name]}, outside pyproject's {requirement}: "
            "run scripts/lock.sh"
        )
