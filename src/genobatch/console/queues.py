"""The Queues page's data: compute environments and job queues, with what their jobs are doing.

Read from the store (never from the engine thread's memory, which only the engine may touch):
counts per queue and status come from one grouped query over the jobs table's status index, and
only jobs that hold capacity (STARTING/RUNNING) or wait (PENDING/RUNNABLE) are read in full.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from genobatch.api.job_detail import STATUSES
from genobatch.backends.registry import BACKEND_TAG
from genobatch.cost.billing import BillingSpec
from genobatch.store import catalog
from genobatch.store.schema import jobs as jobs_table

ACTIVE = ("STARTING", "RUNNING")
#: How a waiting job's reason reads when the scheduler gave none: RUNNABLE waits for capacity.
CAPACITY = "waiting for capacity (vCPUs, memory or GPUs in use)"
DEPENDENCIES = "waiting for dependencies"
#: At most this many waiting jobs are read to explain the waits (the counts are exact regardless).
MAX_WAITING_READ = 5000


@dataclass
class EnvironmentView:
    """One compute environment as the console shows it."""

    name: str
    state: str
    status: str
    status_reason: str
    backend: str
    max_vcpus: int | None
    vcpus_in_use: int
    instance_types: list[str]
    price_per_hour: float | None
    price_note: str

    @property
    def use_percent(self) -> int | None:
        """vCPUs in use as a whole percentage of ``maxvCpus`` (None when there is no maximum)."""
        if not self.max_vcpus:
            return None
        return round(100 * self.vcpus_in_use / self.max_vcpus)


@dataclass
class QueueView:
    """One job queue, its jobs per status and why its waiting jobs wait."""

    name: str
    state: str
    status: str
    priority: int
    environments: list[str]
    counts: dict[str, int]
    waits: list[tuple[str, int]] = field(default_factory=list)


def status_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Jobs per queue and status, array parents left out (their children are counted instead)."""
    parents = select(jobs_table.c.parent_id).where(jobs_table.c.parent_id.is_not(None)).distinct()
    query = (
        select(jobs_table.c.queue, jobs_table.c.status, func.count())
        .where(jobs_table.c.id.not_in(parents))
        .group_by(jobs_table.c.queue, jobs_table.c.status)
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for queue, status, count in conn.execute(query):
        counts[queue][status] = count
    return dict(counts)


def vcpus_in_use(conn: Connection) -> dict[str, int]:
    """vCPUs held now per compute environment: the pinned CPUs of every STARTING/RUNNING attempt."""
    query = select(jobs_table.c.state, jobs_table.c.spec).where(jobs_table.c.status.in_(ACTIVE))
    used: Counter[str] = Counter()
    for state, spec in conn.execute(query):
        attempts = state.get("attempts") or []
        if not attempts:
            continue
        last = attempts[-1]
        requested = ((spec or {}).get("scheduling") or {}).get("vcpus", 1)
        used[last.get("compute_environment") or "?"] += len(last.get("cpus") or []) or requested
    return dict(used)


def wait_reasons(conn: Connection) -> dict[str, Counter[str]]:
    """Per queue, waiting jobs counted by why they wait: the scheduler's reason (e.g.
    ``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT``), capacity, or dependencies."""
    query = (
        select(jobs_table.c.queue, jobs_table.c.status, jobs_table.c.state)
        .where(jobs_table.c.status.in_(("PENDING", "RUNNABLE")))
        .limit(MAX_WAITING_READ)
    )
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for queue, status, state in conn.execute(query):
        if state.get("summary") is not None:
            continue  # an array parent waits only through its children
        if status == "PENDING":
            reasons[queue][DEPENDENCIES] += 1
        else:
            reasons[queue][state.get("status_reason") or CAPACITY] += 1
    return dict(reasons)


def _price(spec: BillingSpec | None) -> tuple[float | None, str]:
    if spec is None:
        return None, "no price: the billing model could not be read"
    note = f"{spec.instance_type or 'host'} {spec.purchase}"
    if spec.price_estimated:
        note += " (estimated)"
    return spec.price_per_hour, note


def environments(conn: Connection, specs: dict[str, BillingSpec]) -> list[EnvironmentView]:
    """Every compute environment with its capacity in use and price per hour (per instance)."""
    used = vcpus_in_use(conn)
    views = []
    for document in catalog.list_documents(conn, "compute-environment"):
        name = document["computeEnvironmentName"]
        resources = document.get("computeResources") or {}
        price, note = _price(specs.get(name))
        views.append(
            EnvironmentView(
                name=name,
                state=document.get("state", ""),
                status=document.get("status", ""),
                status_reason=document.get("statusReason", ""),
                backend=(document.get("tags") or {}).get(BACKEND_TAG, "local"),
                max_vcpus=resources.get("maxvCpus"),
                vcpus_in_use=used.get(name, 0),
                instance_types=list(resources.get("instanceTypes") or []),
                price_per_hour=price,
                price_note=note,
            )
        )
    return views


def queues(conn: Connection) -> list[QueueView]:
    """Every job queue with its jobs per status (every status listed, zeros included) and waits."""
    counts = status_counts(conn)
    reasons = wait_reasons(conn)
    views = []
    for document in catalog.list_documents(conn, "job-queue"):
        name = document["jobQueueName"]
        order = sorted(document.get("computeEnvironmentOrder") or [], key=lambda item: item.get("order", 0))
        views.append(
            QueueView(
                name=name,
                state=document.get("state", ""),
                status=document.get("status", ""),
                priority=document.get("priority", 0),
                environments=[item["computeEnvironment"].rsplit("/", 1)[-1] for item in order],
                counts={status: counts.get(name, {}).get(status, 0) for status in STATUSES},
                waits=reasons.get(name, Counter()).most_common(),
            )
        )
    return views
