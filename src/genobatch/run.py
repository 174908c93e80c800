"""A run: a group of jobs selected by a tag (``genobatch:run=<id>`` or any other) or by queue.

What the native API answers about it - progress, trace records with attributed cost, and the
run's cost (attributed and billed per compute environment) - is computed here from the store's
rows, the compute environments' billing models and the price catalog.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from genobatch.cost.accounting import (
    AttemptCost,
    RunCost,
    attempt_costs,
    cost_per_job,
    cost_per_queue,
    cost_per_sample,
    run_cost,
)
from genobatch.cost.billing import BillingSpec, billing_spec_from_compute_environment
from genobatch.cost.catalog import Catalog, load_catalog
from genobatch.store import catalog as resources
from genobatch.store import jobs as job_rows
from genobatch.trace import sample_of, trace_records

RUN_TAG = "genobatch:run"
#: An instance idle this long is assumed released (billed up to then). AWS Batch scales idle capacity
#: down after minutes, so one minute makes billed cost a lower bound for back-to-back stages.
IDLE_GRACE_S = 60
FINAL = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Selector:
    """Which jobs: those tagged ``tag_key=tag_value``, or those of ``queue``."""

    tag_key: str | None = None
    tag_value: str | None = None
    queue: str | None = None

    @classmethod
    def parse(cls, run: str | None = None, tag: str | None = None, queue: str | None = None) -> Selector:
        """From ``run=<id>``, ``tag=<key>=<value>`` or ``queue=<name>`` (exactly one); ValueError otherwise."""
        given = [value for value in (run, tag, queue) if value]
        if len(given) != 1:
            raise ValueError("give exactly one of run, tag or queue")
        if run:
            return cls(RUN_TAG, run)
        if tag:
            key, sep, value = tag.partition("=")
            if not sep or not key:
                raise ValueError("tag must be KEY=VALUE")
            return cls(key, value)
        return cls(queue=queue)

    def rows(self, conn: Connection) -> list[dict]:
        if self.queue is not None:
            return job_rows.rows_for_queue(conn, self.queue)
        return job_rows.rows_for_tag(conn, self.tag_key, self.tag_value)


def price_catalog(data_dir: Path) -> Catalog:
    """The shipped catalog, with ``<data dir>/prices.json`` (from ``genobatch prices update``) over it."""
    override = data_dir / "prices.json"
    return load_catalog(override if override.exists() else None)


def billing_specs(
    conn: Connection, catalog: Catalog, region: str, host: tuple[int, int, int]
) -> dict[str, BillingSpec]:
    """The billing model of every compute environment; ``host`` is (vCPUs, MiB, GPUs) of the local host."""
    vcpus, memory_mib, gpus = host
    return {
        document["computeEnvironmentName"]: billing_spec_from_compute_environment(
            document, catalog, region, host_vcpus=vcpus, host_memory_mib=memory_mib, host_gpus=gpus
        )
        for document in resources.list_documents(conn, "compute-environment")
    }


def remote_billing_specs(
    records: list[dict], specs: dict[str, BillingSpec], catalog: Catalog, region: str
) -> dict[str, BillingSpec]:
    """Compute environments whose attempts ran on a remote engine that named its instance type.

    An ``aws-batch`` compute environment's jobs run on the remote queue's instances, so they are
    priced as the remote reports them (instance type, spot or on-demand, region), unless the local
    environment sets an explicit price by tag. A type the catalog does not know keeps the local pricing.
    """
    remote: dict[str, dict] = {}
    for record in records:
        if record.get("remote_placement"):
            remote.setdefault(record["compute_environment"], record["remote_placement"])
    priced = {}
    for name, placement in remote.items():
        if specs[name].price_source.startswith("tag "):
            continue
        document = {
            "computeResources": {
                "type": "SPOT" if placement.get("purchase_option") == "spot" else "EC2",
                "instanceTypes": [placement["instance_type"]],
            },
            "tags": {"genobatch:region": placement.get("region") or region},
        }
        with contextlib.suppress(LookupError, ValueError):
            priced[name] = billing_spec_from_compute_environment(document, catalog, region)
    return priced


def progress(rows: list[dict]) -> dict:
    """Jobs per status (jobs that run: array parents are not counted) and samples finished."""
    runnable = [row for row in rows if row["state"].get("summary") is None]
    by_sample: dict[str, list[str]] = {}
    for row in runnable:
        sample = sample_of(row)
        if sample is not None:
            by_sample.setdefault(sample, []).append(row["status"])
    done = sum(1 for statuses in by_sample.values() if all(status in FINAL for status in statuses))
    return {
        "jobs": dict(Counter(row["status"] for row in runnable)),
        "total": len(runnable),
        "samples": len(by_sample),
        "samplesDone": done,
    }


def cost_document(cost: RunCost, costs: list[AttemptCost]) -> dict:
    """The JSON shape of a run's cost for the native API."""
    environments = []
    for name, environment in cost.environments.items():
        spec = environment.spec
        environments.append(
            {
                "name": name,
                "instanceType": spec.instance_type,
                "instanceVcpus": spec.vcpus,
                "instanceMemoryMib": spec.memory_mib,
                "instanceGpus": spec.gpus,
                "pricePerHour": spec.price_per_hour,
                "purchase": spec.purchase,
                "region": spec.region,
                "priceSource": spec.price_source,
                "priceAsOf": spec.price_as_of,
                "priceEstimated": spec.price_estimated,
                "attributedUsd": environment.attributed_usd,
                "billedUsd": environment.billed_usd,
                "instances": len(environment.instances),
                "billedInstanceSeconds": sum(life.billed_s for life in environment.instances),
            }
        )
    return {
        "attributedUsd": cost.attributed_usd,
        "billedUsd": cost.billed_usd,
        "unallocatedUsd": cost.unallocated_usd,
        "vcpuHours": cost.vcpu_hours,
        "computeEnvironments": environments,
        "byJob": cost_per_job(costs),
        "bySample": cost_per_sample(costs),
        "byQueue": cost_per_queue(costs),
    }


def priced_trace(
    conn: Connection, rows: list[dict], catalog: Catalog, region: str, host: tuple[int, int, int], now_ms: int
) -> tuple[list[dict], dict[str, BillingSpec], list[AttemptCost]]:
    """The trace records of ``rows``, each with its ``attributed_cost``, the billing model of every
    compute environment they ran on, and the attempts' costs."""
    specs = billing_specs(conn, catalog, region, host)
    records = [r for r in trace_records(rows) if r["compute_environment"] in specs]
    specs.update(remote_billing_specs(records, specs, catalog, region))
    costs = attempt_costs(records, specs, now_ms)
    per_attempt = {(c.job_id, c.attempt): c.cost_usd for c in costs}
    for record in records:
        record["attributed_cost"] = per_attempt.get((record["task_id"], record["attempt"]), 0.0)
    return records, specs, costs


def summarize(
    conn: Connection,
    selector: Selector,
    catalog: Catalog,
    region: str,
    host: tuple[int, int, int],
    now_ms: int,
    *,
    with_trace: bool = False,
    rows: list[dict] | None = None,
) -> dict:
    """Progress and cost of the selected jobs (and, if asked, their trace with attributed cost).

    ``rows``: the selected jobs' rows when the caller has read them already (the console does), so
    that a large run is not read twice.
    """
    rows = selector.rows(conn) if rows is None else rows
    records, specs, costs = priced_trace(conn, rows, catalog, region, host, now_ms)
    summary = {
        "progress": progress(rows),
        "cost": cost_document(run_cost(records, specs, idle_grace_s=IDLE_GRACE_S, now_ms=now_ms), costs),
    }
    if with_trace:
        summary["trace"] = records
    return summary
