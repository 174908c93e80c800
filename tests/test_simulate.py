"""`genobatch simulate`: the real scheduler under a virtual clock, checked against hand-computed runs.

Each workload here is small enough that its makespan, vCPU-hours and cost can be worked out by
hand from the plan; the simulator must land on those numbers exactly (fixed run times) or the
scheduler's own semantics (retries, evaluateOnExit, N_TO_N, SEQUENTIAL, timeouts) must show.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from genobatch.cli.main import cli
from genobatch.core.array import child_dependencies, expand_array, parent_dependencies
from genobatch.core.compute_environment import ComputeEnvironment
from genobatch.core.job import DEPENDENCY_FAILED, N_TO_N, SEQUENTIAL, TIMEOUT_REASON, Job, Resources
from genobatch.core.placement import place_queue
from genobatch.core.pool import HostPool
from genobatch.core.queue import JobQueue
from genobatch.cost.accounting import run_cost
from genobatch.cost.catalog import load_catalog
from genobatch.run import IDLE_GRACE_S
from genobatch.simulate import runtime
from genobatch.simulate.outcome import attempt_records, outcome_of
from genobatch.simulate.plan import PlanError, load_plan, parse_plan
from genobatch.simulate.simulator import Simulation, billing_specs
from genobatch.simulate.summary import simulate

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

CATALOG = load_catalog(None)
M6I_LARGE = CATALOG.price("m6i.large", "us-east-1").value  # 2 vCPUs, 8 GiB
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "simulate"


def plan_of(workload: list[dict], definitions: list[dict] | None = None, **environment) -> dict:
    """A plan on one m6i.large environment (2 vCPUs), everything running from the start unless overridden."""
    ce = {"name": "ce", "instance_type": "m6i.large", "min_vcpus": 2, "max_vcpus": 2, **environment}
    return {
        "name": "t",
        "compute_environments": [ce],
        "queues": [{"name": "q", "compute_environments": ["ce"]}],
        "job_definitions": definitions or [{"name": "d", "resources": {"vcpus": 1}, "runtime": {"fixed": 60}}],
        "workload": [{"queue": "q", "job_definition": "d", **w} for w in workload],
    }


def run(document: dict, seed: int = 1, base_dir: Path | None = None) -> Simulation:
    plan = parse_plan(document, base_dir or Path.cwd())
    return Simulation(plan, billing_specs(plan, CATALOG), seed).run()


# --------------------------------------------------------------------------- core/array.py
def test_array_children_resolve_n_to_n_sequential_and_plain_dependencies():
    parent = Job(id="B", name="b", queue="q", seq=1, created_at=0, array_size=3)
    depends_on = [("A", N_TO_N), ("", SEQUENTIAL), ("C", None)]
    children = expand_array(parent, depends_on)
    assert [c.id for c in children] == ["B:0", "B:1", "B:2"]
    assert children[0].depends_on == (("A:0", N_TO_N), ("C", None))
    assert children[2].depends_on == (("A:2", N_TO_N), ("B:1", SEQUENTIAL), ("C", None))
    assert all(c.parent_id == "B" and c.seq == 1 for c in children)
    assert parent_dependencies(depends_on) == (("A", N_TO_N), ("C", None))
    assert child_dependencies("B", 1, [("", SEQUENTIAL)]) == (("B:0", SEQUENTIAL),)
    with pytest.raises(ValueError, match="not an array"):
        expand_array(Job(id="x", name="x", queue="q", seq=2, created_at=0), [])


# --------------------------------------------------------------------------- exact runs
def test_fixed_run_times_on_a_fixed_fleet_give_the_hand_computed_makespan_and_cost():
    # 10 one-vCPU jobs of 60 s on 2 vCPUs: 5 waves, 300 s; one instance held throughout.
    simulation = run(plan_of([{"name": "w", "count": 10}]))
    outcome = outcome_of(simulation, billing_specs(simulation.plan, CATALOG))
    assert outcome.makespan_s == 300
    assert outcome.jobs == {"SUCCEEDED": 10}
    assert outcome.vcpu_hours == pytest.approx(10 * 60 / 3600)
    # Each job takes 1 of 2 vCPUs (and 2 GiB of 8): a share of 0.5.
    assert outcome.attributed_usd == pytest.approx(10 * 0.5 * M6I_LARGE * 60 / 3600)
    # The cost code packs the attempts onto one m6i.large, held 300 s then IDLE_GRACE_S idle.
    assert outcome.billed_usd == pytest.approx((300 + IDLE_GRACE_S) * M6I_LARGE / 3600)
    assert outcome.fleet_instance_hours == pytest.approx(300 / 3600)  # min_vcpus: held to the end
    assert outcome.utilisation == pytest.approx(1.0)
    # Waves wait 0, 60, 120, 180, 240 s (two jobs each).
    assert outcome.wait_mean_s == pytest.approx(120)


def test_totals_equal_what_run_cost_gives_for_the_same_attempts_as_trace_records():
    simulation = run(
        plan_of([{"name": "w", "count": 30}], max_vcpus=6, min_vcpus=0, scaling_delay_s=30),
    )
    specs = billing_specs(simulation.plan, CATALOG)
    outcome = outcome_of(simulation, specs)
    reference = run_cost(attempt_records(simulation), specs, idle_grace_s=IDLE_GRACE_S)
    assert outcome.attributed_usd == pytest.approx(reference.attributed_usd, rel=1e-12)
    assert outcome.billed_usd == pytest.approx(reference.billed_usd, rel=1e-12)
    assert outcome.vcpu_hours == pytest.approx(reference.vcpu_hours, rel=1e-12)


def test_scaling_delay_and_max_vcpus_bound_the_fleet():
    # No capacity at the start: 3 instances (6 vCPUs max) launch at 0 and take jobs at 120 s.
    simulation = run(plan_of([{"name": "w", "count": 12}], min_vcpus=0, max_vcpus=6, scaling_delay_s=120))
    outcome = outcome_of(simulation, billing_specs(simulation.plan, CATALOG))
    assert outcome.makespan_s == 120 + 2 * 60  # 12 jobs on 6 vCPUs: two waves after boot
    assert outcome.instances_launched == 3
    # The fleet is billed from launch (boot included) to release 60 s after its last job.
    assert outcome.fleet_instance_hours == pytest.approx(3 * (240 + 60) / 3600)
    assert max(i.fleet_vcpus for i in outcome.timeline) == pytest.approx(6)


def test_sequential_and_n_to_n_arrays_and_a_final_job_follow_the_scheduler():
    definitions = [{"name": "d", "resources": {"vcpus": 1}, "runtime": {"fixed": 10}}]
    document = plan_of(
        [
            {"name": "a", "array_size": 4, "depends_on": [{"type": "SEQUENTIAL"}]},
            {"name": "b", "array_size": 4, "depends_on": [{"job": "a", "type": "N_TO_N"}]},
            {"name": "c", "depends_on": [{"job": "b"}]},
        ],
        definitions,
        min_vcpus=8,
        max_vcpus=8,
        instance_type="m6i.2xlarge",
    )
    simulation = run(document)
    jobs = simulation.scheduler.jobs
    assert [jobs[f"a:{i}"].started_at for i in range(4)] == [0, 10_000, 20_000, 30_000]
    # b:i starts as soon as a:i ends (N_TO_N), while a:i+1 runs.
    assert [jobs[f"b:{i}"].started_at for i in range(4)] == [10_000, 20_000, 30_000, 40_000]
    assert jobs["c"].started_at == 50_000
    assert jobs["a"].status == jobs["b"].status == jobs["c"].status == "SUCCEEDED"


def test_failures_are_retried_by_the_scheduler_and_a_failed_dependency_fails_its_dependent():
    definitions = [
        {
            "name": "d",
            "runtime": {"fixed": 60},
            "failure_rate": 1.0,
            "failure_exit_code": 3,
            "retry_strategy": {"attempts": 3},
        },
        {"name": "after", "runtime": {"fixed": 60}},
    ]
    document = plan_of(
        [{"name": "w"}, {"name": "next", "job_definition": "after", "depends_on": [{"job": "w"}]}], definitions
    )
    simulation = run(document)
    w, following = simulation.scheduler.jobs["w"], simulation.scheduler.jobs["next"]
    assert w.status == "FAILED" and len(w.attempts) == 3
    assert all(a.exit_code == 3 for a in w.attempts)
    assert following.status == "FAILED" and following.status_reason == DEPENDENCY_FAILED
    assert following.attempts == []


def test_evaluate_on_exit_decides_on_exit_codes():
    definitions = [
        {
            "name": "d",
            "runtime": {"fixed": 60},
            "failure_rate": 1.0,
            "failure_exit_code": 3,
            "retry_strategy": {"attempts": 5, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]},
        }
    ]
    simulation = run(plan_of([{"name": "w"}], definitions))
    assert len(simulation.scheduler.jobs["w"].attempts) == 1  # EXIT on exit code 3: no retry


def test_spot_interruptions_end_attempts_with_aws_reason_and_evaluate_on_exit_retries_them():
    def document(action: str) -> dict:
        definitions = [
            {
                "name": "d",
                "runtime": {"fixed": 3600},
                "retry_strategy": {
                    "attempts": 10,
                    "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": action}],
                },
            }
        ]
        return plan_of(
            [{"name": "w", "count": 20}],
            definitions,
            purchase="spot",
            min_vcpus=0,
            max_vcpus=8,
            scaling_delay_s=60,
            spot_interruptions_per_hour=1.0,
        )

    retried = run(document("RETRY"))
    outcome = outcome_of(retried, billing_specs(retried.plan, CATALOG))
    assert outcome.interruptions > 0
    assert outcome.jobs == {"SUCCEEDED": 20}
    assert outcome.attempts > 20
    reasons = {a.status_reason for j in retried.scheduler.jobs.values() for a in j.attempts[:-1]}
    assert all(r.startswith("Host EC2 (instance i-") and r.endswith(") terminated.") for r in reasons)

    exited = run(document("EXIT"))
    failed = [j for j in exited.scheduler.jobs.values() if j.status == "FAILED"]
    assert failed and all(len(j.attempts) == 1 and j.status_reason.startswith("Host EC2") for j in failed)


def test_a_timeout_stops_the_attempt_at_its_deadline():
    definitions = [{"name": "d", "runtime": {"fixed": 500}, "timeout_s": 120}]
    simulation = run(plan_of([{"name": "w"}], definitions))
    job = simulation.scheduler.jobs["w"]
    assert job.status == "FAILED" and job.status_reason == TIMEOUT_REASON
    assert job.attempts[0].stopped_at - job.attempts[0].started_at == 120_000


def test_a_job_no_instance_can_hold_is_left_runnable_with_aws_reason_and_reported_unfinished():
    definitions = [{"name": "d", "resources": {"vcpus": 1, "memory": 100_000}, "runtime": {"fixed": 60}}]
    simulation = run(plan_of([{"name": "w"}], definitions))
    outcome = outcome_of(simulation, billing_specs(simulation.plan, CATALOG))
    job = simulation.scheduler.jobs["w"]
    assert job.status == "RUNNABLE" and job.status_reason.startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    assert outcome.jobs == {"UNFINISHED": 1}


def test_a_job_that_never_fits_ends_the_simulation_despite_reclaimed_minimum_capacity():
    definitions = [
        {"name": "d", "runtime": {"fixed": 60}, "retry_strategy": {"attempts": 10}},
        {"name": "huge", "resources": {"vcpus": 1, "memory": 100_000}, "runtime": {"fixed": 60}},
    ]
    document = plan_of(
        [{"name": "w", "count": 4}, {"name": "never", "job_definition": "huge"}],
        definitions,
        purchase="spot",
        spot_interruptions_per_hour=30.0,
    )
    simulation = run(document)  # returns: the minimum is not replaced for ever
    outcome = outcome_of(simulation, billing_specs(simulation.plan, CATALOG))
    assert outcome.jobs == {"SUCCEEDED": 4, "UNFINISHED": 1}


def test_a_seed_reproduces_its_run_and_another_seed_differs():
    definitions = [{"name": "d", "runtime": {"lognormal": {"median": 600, "sigma": 0.5}}, "failure_rate": 0.1}]
    document = plan_of([{"name": "w", "count": 40}], definitions, max_vcpus=8, min_vcpus=0, scaling_delay_s=60)
    first, again, other = (run(document, seed) for seed in (1, 1, 2))
    first, again, other = (outcome_of(s, billing_specs(s.plan, CATALOG)) for s in (first, again, other))
    assert first.metrics() == again.metrics()
    assert first.makespan_s != other.makespan_s


# --------------------------------------------------------------------------- run times
def test_run_times_are_fitted_from_a_trace_tsv(tmp_path: Path):
    header = "task_id\tstatus\trealtime\tjob_definition\n"
    rows = [
        "a\tCOMPLETED\t1000\talign:1",
        "b\tCOMPLETED\t3000\talign:2",
        "c\tFAILED\t50\talign:1",
        "d\tCOMPLETED\t9\tx:1",
    ]
    (tmp_path / "trace.tsv").write_text(header + "\n".join(rows) + "\n")
    definitions = [{"name": "align", "runtime": {"trace": {"path": "trace.tsv"}}}]
    plan = parse_plan(plan_of([{"name": "w", "job_definition": "align"}], definitions), tmp_path)
    distribution = plan.job_definition("align").distribution
    assert distribution.kind == "empirical" and sorted(distribution.values) == [1.0, 3.0]  # failed one left out
    fitted = runtime.fit([1.0, 3.0], "lognormal")
    assert math.exp(fitted.mu) == pytest.approx(math.sqrt(3))  # geometric mean


def test_run_times_are_fitted_from_the_runs_api_json(tmp_path: Path):
    trace = [{"status": "COMPLETED", "realtime": 2500, "job_definition": "call:1"}]
    (tmp_path / "run.json").write_text(json.dumps({"trace": trace}))
    definitions = [{"name": "d", "runtime": {"trace": {"path": "run.json", "job_definition": "call"}}}]
    plan = parse_plan(plan_of([{"name": "w"}], definitions), tmp_path)
    assert plan.job_definition("d").distribution.values == (2.5,)


# --------------------------------------------------------------------------- bad plans
@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda d: d["compute_environments"][0].update(purchse="spot"), "compute_environments[0].purchse", "purchase"),
        (lambda d: d["workload"][0].update(count=0), "workload[0].count", "greater than or equal to 1"),
        (lambda d: d["job_definitions"][0].update(runtime={}), "job_definitions[0].runtime", "exactly one"),
        (lambda d: d["queues"][0].update(compute_environments=["nope"]), "", "no compute environment 'nope'"),
        (lambda d: d["workload"][0].update(depends_on=[{"job": "later"}]), "", "not an earlier workload entry"),
        (
            lambda d: d["job_definitions"][0].update(runtime={"trace": {"path": "missing.tsv"}}),
            "job_definitions[0]",
            "no such file",
        ),
        (
            lambda d: d["job_definitions"][0].update(retry_strategy={"evaluateOnExit": [{"action": "MAYBE"}]}),
            "job_definitions[0].retry_strategy.evaluateOnExit",
            "RETRY or EXIT",
        ),
    ],
)
def test_a_bad_plan_names_the_field_and_the_problem(change, field, problem):
    document = plan_of([{"name": "w"}])
    change(document)
    with pytest.raises(PlanError) as caught:
        parse_plan(document, Path.cwd())
    assert any(where.startswith(field) and problem in message for where, message in caught.value.problems), (
        caught.value.problems
    )


def test_an_unknown_instance_type_is_refused_naming_the_field():
    plan = parse_plan(plan_of([{"name": "w"}], instance_type="m6i.lrge"), Path.cwd())
    with pytest.raises(PlanError) as caught:
        billing_specs(plan, CATALOG)
    ((where, message),) = caught.value.problems
    assert where == "compute_environments[0].instance_type" and "m6i.large" in message


# --------------------------------------------------------------------------- the command
def test_cli_prints_tables_and_json_for_the_example_pipeline(tmp_path: Path):
    runner = CliRunner()
    plan = EXAMPLES / "pipeline.yaml"
    result = runner.invoke(cli, ["--data-dir", str(tmp_path), "simulate", str(plan), "--seeds", "2", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["seeds"] == [1, 2] and document["jobs"] == 401
    assert all(run["jobsByStatus"].get("SUCCEEDED") == 401 for run in document["runs"])
    makespan = document["percentiles"]["makespan_h"]
    assert makespan["p10"] <= makespan["p50"] <= makespan["p90"]
    assert document["computeEnvironments"]["spot"]["priceEstimated"] is True

    table = runner.invoke(cli, ["--data-dir", str(tmp_path), "simulate", str(plan), "--seeds", "1"])
    assert table.exit_code == 0, table.output
    assert "makespan" in table.output and "Utilisation over time" in table.output
    assert "spot price is an estimate" in table.output


def test_cli_refuses_a_bad_plan_with_the_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "pipeline.yaml").read_text().replace("max_vcpus: 64", "max_vcpus: -1"))
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "simulate", str(bad)])
    assert result.exit_code == 1
    assert "compute_environments[0].max_vcpus" in result.output


def test_examples_load():
    for path in EXAMPLES.glob("*.yaml"):
        assert load_plan(path).total_jobs > 0


def test_simulate_summary_percentiles_over_seeds():
    plan = parse_plan(
        plan_of([{"name": "w", "count": 20}], [{"name": "d", "runtime": {"normal": {"mean": 300, "sd": 100}}}]),
        Path.cwd(),
    )
    summary = simulate(plan, CATALOG, seeds=5)
    assert [o.seed for o in summary.outcomes] == [1, 2, 3, 4, 5]
    makespans = sorted(o.makespan_s / 3600 for o in summary.outcomes)
    row = summary.percentiles()["makespan_h"]
    assert row["p50"] == pytest.approx(makespans[2]) and row["p10"] <= row["p50"] <= row["p90"]
    assert summary.median_outcome.makespan_s / 3600 == pytest.approx(makespans[2])


# --------------------------------------------------------------------------- core placement at scale
class _CountingJobs(dict):
    """The scheduler's job map, counting how many jobs a placement pass looks at."""

    looked_at = 0

    def __getitem__(self, key):
        self.looked_at += 1
        return super().__getitem__(key)


def _queue_with(shapes: list[Resources]) -> tuple[JobQueue, _CountingJobs]:
    queue, jobs = JobQueue("q", 1, ("ce",)), _CountingJobs()
    for i, need in enumerate(shapes):
        job = Job(id=f"j{i}", name="j", queue="q", seq=i, created_at=0, resources=need)
        jobs[job.id] = job
        queue.add(job)
    return queue, jobs


def test_a_placement_pass_stops_once_every_queued_shape_is_blocked():
    # 3 vCPUs free, but split so that no 2-vCPU job fits: the pass used to walk the whole backfill
    # window (1,000 jobs) on every call - the simulator's 67,000-job campaign made that visible.
    pool = HostPool("h", cpus=(0, 1, 2), memory_mib=3000)
    environment = ComputeEnvironment("ce", pool, max_vcpus=3)
    queue, jobs = _queue_with([Resources(vcpus=1, memory_mib=2000)] + [Resources(vcpus=2, memory_mib=2000)] * 5000)
    placed = place_queue(queue, [environment], jobs)
    assert [p.job_id for p in placed] == ["j0"]
    assert jobs.looked_at == 2  # j0 placed, j1 blocked: its shape is the only one left, so stop
    assert len(queue.runnable) == 5000 and queue.shapes == {Resources(vcpus=2, memory_mib=2000): 5000}


def test_backfill_still_reaches_a_smaller_job_behind_blocked_ones():
    pool = HostPool("h", cpus=(0, 1), memory_mib=8000)
    environment = ComputeEnvironment("ce", pool, max_vcpus=2)
    big, small = Resources(vcpus=4, memory_mib=1000), Resources(vcpus=1, memory_mib=1000)
    queue, jobs = _queue_with([big] * 10 + [small])
    placed = place_queue(queue, [environment], jobs)
    assert [p.job_id for p in placed] == ["j10"]
    assert queue.shapes == {big: 10}
