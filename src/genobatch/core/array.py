"""Array jobs: a parent's children with their per-index dependencies resolved.

AWS Batch expands an array job into children ``<parent id>:<index>``. Dependencies apply per child:

* ``N_TO_N`` on another array of the same size: child ``i`` waits for that array's child ``i``;
* ``SEQUENTIAL`` (no job id): child ``i`` waits for child ``i - 1`` of its own array;
* any other dependency (a plain job, a whole array): every child waits for it.

The parent itself never runs; it waits only on its non-SEQUENTIAL dependencies, which its children
carry too. Pure functions: the API's SubmitJob and the capacity-planning simulator both build their
scheduler records here, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from genobatch.core.job import N_TO_N, SEQUENTIAL, Job

Dependency = tuple[str, str | None]  # (job id, type or None); SEQUENTIAL has an empty job id


def child_id(parent_id: str, index: int) -> str:
    """The id AWS Batch gives child ``index`` of array job ``parent_id``."""
    return f"{parent_id}:{index}"


def parent_dependencies(depends_on: Sequence[Dependency]) -> tuple[Dependency, ...]:
    """What the job record itself waits on: SEQUENTIAL only orders its children."""
    return tuple((dep_id, dep_type) for dep_id, dep_type in depends_on if dep_type != SEQUENTIAL)


def child_dependencies(parent_id: str, index: int, depends_on: Sequence[Dependency]) -> tuple[Dependency, ...]:
    """Child ``index``'s dependencies, with N_TO_N and SEQUENTIAL resolved to concrete child ids."""
    deps: list[Dependency] = []
    for dep_id, dep_type in depends_on:
        if dep_type == N_TO_N:
            deps.append((child_id(dep_id, index), N_TO_N))
        elif dep_type == SEQUENTIAL:
            if index > 0:
                deps.append((child_id(parent_id, index - 1), SEQUENTIAL))
        else:
            deps.append((dep_id, dep_type))
    return tuple(deps)


def expand_array(parent: Job, depends_on: Sequence[Dependency]) -> list[Job]:
    """Array children ``<parent>:<i>`` of ``parent`` (which has ``array_size`` set), in index order.

    ``depends_on`` is the parent's dependency list as submitted (SEQUENTIAL entries included).
    Children inherit the parent's queue, submission order, resources, priority, retry strategy
    and timeout.
    """
    if parent.array_size is None:
        raise ValueError(f"job {parent.id} is not an array job")
    return [
        Job(
            id=child_id(parent.id, index),
            name=parent.name,
            queue=parent.queue,
            seq=parent.seq,
            created_at=parent.created_at,
            resources=parent.resources,
            priority=parent.priority,
            max_attempts=parent.max_attempts,
            evaluate_on_exit=parent.evaluate_on_exit,
            timeout_s=parent.timeout_s,
            parent_id=parent.id,
            array_index=index,
            depends_on=child_dependencies(parent.id, index, depends_on),
        )
        for index in range(parent.array_size)
    ]
