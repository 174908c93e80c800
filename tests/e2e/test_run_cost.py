"""Cost and usage of a run through the native API, recomputed from its own trace."""

from __future__ import annotations

import math
import uuid

from harness import spot_queue, wait_for


def test_run_summary_cost_matches_trace_and_declared_instance(genobatch_server, batch):
    # A compute environment that bills as an m5.xlarge on spot (4 vCPUs, 16 GiB), slicing this host.
    queue, _ = spot_queue(batch, "cost")
    definition = batch.register_job_definition(
        jobDefinitionName="cost-def",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["python3", "-c", "import time; x = bytearray(30 << 20); time.sleep(1.2)"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "8192"}],
        },
    )["jobDefinitionArn"]
    run = "run-" + uuid.uuid4().hex[:6]
    parent = batch.submit_job(
        jobName="per-sample",
        jobQueue=queue,
        jobDefinition=definition,
        arrayProperties={"size": 2},
        tags={"genobatch:run": run, "genobatch:sample-prefix": "s"},
    )["jobId"]
    assert wait_for(batch, parent)["status"] == "SUCCEEDED"

    summary = genobatch_server.native("/runs", run=run, trace="1")
    assert summary["progress"] == {"jobs": {"SUCCEEDED": 2}, "total": 2, "samples": 2, "samplesDone": 2}
    trace = summary["trace"]
    assert {r["sample"] for r in trace} == {"s0", "s1"}
    assert all(r["peak_rss"] >= 30 << 20 and r["realtime"] >= 1200 for r in trace), [
        (r["peak_rss"], r["realtime"], r["pct_cpu"]) for r in trace
    ]
    cost = summary["cost"]
    (environment,) = cost["computeEnvironments"]
    assert environment["instanceType"] == "m5.xlarge" and environment["purchase"] == "spot"
    price = environment["pricePerHour"]
    # Memory dominates: 8 GiB of 16 GiB is a 0.5 share of the instance for each job's running time.
    for record in trace:
        expected = 0.5 * price * record["realtime"] / 1000 / 3600
        assert math.isclose(record["attributed_cost"], expected, rel_tol=1e-6)
    assert math.isclose(cost["attributedUsd"], sum(r["attributed_cost"] for r in trace), rel_tol=1e-9)
    assert math.isclose(sum(cost["bySample"].values()), cost["attributedUsd"], rel_tol=1e-9)
    # Billed: one instance held for at least the 60 s minimum.
    assert environment["billedInstanceSeconds"] >= 60
    assert math.isclose(cost["billedUsd"], environment["billedInstanceSeconds"] * price / 3600, rel_tol=1e-9)
    assert cost["billedUsd"] > cost["attributedUsd"]
