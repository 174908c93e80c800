"""The pure scheduling core, driven with a virtual clock: no processes, no database."""

from __future__ import annotations

import copy

import pytest

from genobatch.core.action import StartAttempt, StopAttempt
from genobatch.core.job import (
    DEPENDENCY_FAILED,
    MAX_RESOURCE,
    N_TO_N,
    RESOURCE_MISCONFIGURATION,
    TIMEOUT_REASON,
    Job,
    Resources,
)
from genobatch.core.pool import CountedPool, HostPool
from genobatch.core.retry import ExitInfo, decide, glob_matches
from genobatch.core.scheduler import Scheduler
from genobatch.core.status import IllegalTransition, JobStatus, check_transition

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

S = JobStatus
OK = ExitInfo(0, None, "Essential container in task exited")


def fail(code: int = 1, reason: str | None = None, status_reason: str = "Essential container in task exited"):
    return ExitInfo(code, reason, status_reason)


def make(cpus: int = 2, gpus: int = 0, memory: int = 8192, max_vcpus: int | None = None) -> Scheduler:
    scheduler = Scheduler()
    scheduler.set_pool(HostPool("local", tuple(range(cpus)), memory, tuple(range(gpus))))
    scheduler.set_compute_environment("ce", "local", max_vcpus or cpus, True)
    scheduler.set_queue("q", 1, ["ce"], True)
    return scheduler


_seq = iter(range(1, 10**6))


def job(job_id: str, **kwargs) -> Job:
    return Job(id=job_id, name=job_id, queue=kwargs.pop("queue", "q"), seq=next(_seq), created_at=0, **kwargs)


def array(job_id: str, size: int, deps=(), **kwargs) -> list[Job]:
    parent = job(job_id, array_size=size, **kwargs)
    children = []
    for i in range(size):
        child_deps = []
        for dep_id, dep_type in deps:
            if dep_type == N_TO_N:
                child_deps.append((f"{dep_id}:{i}", N_TO_N))
            elif dep_type == "SEQUENTIAL":
                if i:
                    child_deps.append((f"{job_id}:{i - 1}", "SEQUENTIAL"))
            else:
                child_deps.append((dep_id, None))
        children.append(
            Job(
                id=f"{job_id}:{i}",
                name=job_id,
                queue="q",
                seq=parent.seq,
                created_at=0,
                parent_id=job_id,
                array_index=i,
                depends_on=tuple(child_deps),
                resources=parent.resources,
                max_attempts=parent.max_attempts,
            )
        )
    return [parent, *children]


def run_to_end(scheduler: Scheduler, now: int = 1, outcome=lambda job_id: OK) -> list[str]:
    """Start and finish everything that becomes runnable; return job ids in start order."""
    order = []
    while True:
        starts = [a for a in scheduler.schedule(now) if isinstance(a, StartAttempt)]
        if not starts:
            return order
        for action in starts:
            order.append(action.job_id)
            scheduler.started(action.job_id, action.attempt, now, {})
            scheduler.exited(action.job_id, action.attempt, now + 1, outcome(action.job_id), {})
        now += 2


def test_transition_table_refuses_illegal_changes():
    check_transition(S.RUNNING, S.RUNNABLE)  # a retry
    with pytest.raises(IllegalTransition):
        check_transition(S.SUCCEEDED, S.RUNNING)
    with pytest.raises(IllegalTransition):
        check_transition(S.PENDING, S.RUNNING, array_parent=True)


def test_plain_job_runs_and_succeeds():
    scheduler = make()
    j = job("a")
    scheduler.submit([j], {}, 0)
    assert j.status == S.RUNNABLE
    (start,) = scheduler.schedule(0)
    assert isinstance(start, StartAttempt) and start.cpus == (0,)
    assert j.status == S.STARTING
    scheduler.started("a", 1, 5, {"pid": 1})
    assert j.status == S.RUNNING and j.started_at == 5
    scheduler.exited("a", 1, 9, OK, {})
    assert j.status == S.SUCCEEDED and j.stopped_at == 9


def test_dependency_failure_propagates_down_a_chain():
    scheduler = make()
    a, b, c = job("a"), job("b", depends_on=(("a", None),)), job("c", depends_on=(("b", None),))
    scheduler.submit([a, b, c], {}, 0)
    assert (a.status, b.status, c.status) == (S.RUNNABLE, S.PENDING, S.PENDING)
    run_to_end(scheduler, outcome=lambda _: fail())
    assert a.status == S.FAILED
    assert b.status == c.status == S.FAILED and b.status_reason == DEPENDENCY_FAILED


def test_dependency_on_already_finished_jobs():
    scheduler = make()
    ok, bad = job("ok", depends_on=(("done", None),)), job("bad", depends_on=(("broken", None),))
    scheduler.submit([ok, bad], {"done": S.SUCCEEDED, "broken": S.FAILED}, 0)
    assert ok.status == S.RUNNABLE and bad.status == S.FAILED


def test_n_to_n_child_waits_for_same_index_only():
    scheduler = make()
    first = array("A", 3)
    second = array("B", 3, deps=[("A", N_TO_N)])
    scheduler.submit(first, {}, 0)
    scheduler.submit(second, {}, 0)
    assert all(child.status == S.PENDING for child in second[1:])
    scheduler.schedule(0)
    scheduler.started("A:1", 1, 1, {})
    scheduler.exited("A:1", 1, 2, OK, {})
    assert second[2].status == S.RUNNABLE
    assert second[1].status == S.PENDING and second[3].status == S.PENDING


def test_sequential_array_runs_in_index_order_even_with_spare_capacity():
    scheduler = make(cpus=4)
    jobs = array("S", 4, deps=[("", "SEQUENTIAL")])
    scheduler.submit(jobs, {}, 0)
    assert run_to_end(scheduler) == ["S:0", "S:1", "S:2", "S:3"]
    assert jobs[0].status == S.SUCCEEDED and jobs[0].summary["SUCCEEDED"] == 4


def test_long_sequential_chain_fails_without_recursion():
    scheduler = make()
    jobs = array("L", 5000, deps=[("", "SEQUENTIAL")])
    scheduler.submit(jobs, {}, 0)
    (start,) = scheduler.schedule(0)
    scheduler.started(start.job_id, 1, 1, {})
    scheduler.exited(start.job_id, 1, 2, fail(), {})
    assert jobs[-1].status == S.FAILED and jobs[0].status == S.FAILED
    assert jobs[0].summary["FAILED"] == 5000


def test_array_parent_fails_when_a_child_fails_and_summary_counts():
    scheduler = make()
    jobs = array("P", 3)
    scheduler.submit(jobs, {}, 0)
    assert jobs[0].status == S.PENDING and jobs[0].summary["RUNNABLE"] == 3
    run_to_end(scheduler, outcome=lambda jid: fail() if jid == "P:1" else OK)
    assert jobs[0].status == S.FAILED
    assert jobs[0].summary["SUCCEEDED"] == 2 and jobs[0].summary["FAILED"] == 1


def test_retry_until_attempts_exhausted_then_fail():
    scheduler = make()
    j = job("r", max_attempts=3)
    scheduler.submit([j], {}, 0)
    run_to_end(scheduler, outcome=lambda _: fail(2))
    assert j.status == S.FAILED and len(j.attempts) == 3


def test_evaluate_on_exit_exit_branch_stops_retries():
    scheduler = make()
    rules = ({"onExitCode": "3", "action": "EXIT"}, {"onReason": "*", "action": "RETRY"})
    j = job("r", max_attempts=5, evaluate_on_exit=rules)
    scheduler.submit([j], {}, 0)
    run_to_end(scheduler, outcome=lambda _: fail(3))
    assert j.status == S.FAILED and len(j.attempts) == 1


def test_evaluate_on_exit_no_match_means_retry():
    assert decide([{"onExitCode": "7", "action": "EXIT"}], fail(1)) == "RETRY"
    assert (
        decide([{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}], fail())
        == "EXIT"
    )
    assert glob_matches("Out*", "OutOfMemoryError: x") and not glob_matches("Out", "OutOfMemory")


def test_timeout_stops_attempt_and_is_not_retried():
    scheduler = make()
    j = job("t", timeout_s=60, max_attempts=3)
    scheduler.submit([j], {}, 0)
    scheduler.schedule(0)
    scheduler.started("t", 1, 1000, {})
    assert scheduler.next_deadline() == 61_000
    assert scheduler.tick(60_999) == []
    assert scheduler.tick(61_000) == [StopAttempt("t", 1)]
    scheduler.exited("t", 1, 61_500, fail(143), {})
    assert j.status == S.FAILED and j.status_reason == TIMEOUT_REASON and len(j.attempts) == 1


def test_cancel_and_terminate_by_state():
    scheduler = make(cpus=1)
    running, queued, pending = job("run"), job("queued"), job("pend", depends_on=(("run", None),))
    scheduler.submit([running, queued, pending], {}, 0)
    scheduler.schedule(0)
    scheduler.started("run", 1, 1, {})
    scheduler.cancel("run", "no", 2)
    assert running.status == S.RUNNING  # CancelJob leaves running jobs alone
    scheduler.cancel("queued", "user cancel", 2)
    assert queued.status == S.FAILED and queued.is_cancelled and queued.status_reason == "user cancel"
    assert scheduler.terminate("run", "stop it", 3) == [StopAttempt("run", 1)]
    scheduler.exited("run", 1, 4, fail(143), {})
    assert running.status == S.FAILED and running.is_terminated and running.status_reason == "stop it"
    assert pending.status == S.FAILED and pending.status_reason == DEPENDENCY_FAILED


def test_terminate_while_starting_stops_once_started():
    scheduler = make()
    j = job("s")
    scheduler.submit([j], {}, 0)
    scheduler.schedule(0)
    assert scheduler.terminate("s", "bye", 1) == [StopAttempt("s", 1)]
    assert scheduler.started("s", 1, 2, {}) == [StopAttempt("s", 1)]


def test_gpus_assigned_exclusively_and_released():
    scheduler = make(cpus=8, gpus=4)
    jobs = [job(f"g{i}", resources=Resources(1, 100, 2)) for i in range(3)]
    scheduler.submit(jobs, {}, 0)
    starts = scheduler.schedule(0)
    assert [s.gpus for s in starts] == [(0, 1), (2, 3)]
    scheduler.started("g0", 1, 1, {})
    scheduler.exited("g0", 1, 2, OK, {})
    (third,) = scheduler.schedule(3)
    assert third.job_id == "g2" and third.gpus == (0, 1)


def test_backfill_small_jobs_past_a_head_that_does_not_fit_now():
    scheduler = make(cpus=4)
    big1, big2, small = job("big1", resources=Resources(3)), job("big2", resources=Resources(3)), job("small")
    scheduler.submit([big1, big2, small], {}, 0)
    assert [s.job_id for s in scheduler.schedule(0)] == ["big1", "small"]


def test_job_that_can_never_fit_gets_misconfiguration_reason_at_once():
    scheduler = make(cpus=2)
    huge = job("huge", resources=Resources(vcpus=64))
    scheduler.submit([huge], {}, 0)
    # More vCPUs than the compute environment's maxvCpus: AWS's COMPUTE_ENVIRONMENT_MAX_RESOURCE.
    assert huge.status == S.RUNNABLE and huge.status_reason.startswith(MAX_RESOURCE + " - ")
    assert scheduler.schedule(0) == []
    scheduler.set_pool(HostPool("big", tuple(range(64)), 1 << 20))
    scheduler.set_compute_environment("ce2", "big", 64, True)
    scheduler.set_queue("q", 1, ["ce", "ce2"], True)
    assert huge.status_reason is None and [s.job_id for s in scheduler.schedule(1)] == ["huge"]


def test_priority_override_and_queue_priority():
    scheduler = make(cpus=1)
    scheduler.set_queue("high", 10, ["ce"], True)
    low, urgent, other = job("low"), job("urgent", priority=50), job("other", queue="high")
    scheduler.submit([low, urgent, other], {}, 0)
    assert run_to_end(scheduler) == ["other", "urgent", "low"]


def test_max_vcpus_caps_a_compute_environment():
    scheduler = make(cpus=4, max_vcpus=1)
    scheduler.submit([job("x"), job("y")], {}, 0)
    assert len(scheduler.schedule(0)) == 1


def test_restore_reserves_capacity_of_in_flight_attempts():
    scheduler = make(cpus=1)
    j = job("a")
    scheduler.submit([j], {}, 0)
    scheduler.schedule(0)
    scheduler.started("a", 1, 1, {})
    fresh = make(cpus=1)
    waiting = job("b")
    waiting.status = S.RUNNABLE
    in_flight = fresh.restore([j, waiting], {})
    assert in_flight == [j]
    assert fresh.schedule(2) == []  # the restored attempt still holds the only CPU
    fresh.exited("a", 1, 3, OK, {})
    assert [s.job_id for s in fresh.schedule(4)] == ["b"]


def test_queue_time_limit_cancels_a_job_that_can_never_fit():
    scheduler = make(cpus=2)
    scheduler.set_queue("q", 1, ["ce"], True, {MAX_RESOURCE: 600})
    huge = job("huge", resources=Resources(vcpus=64))
    scheduler.submit([huge], {}, 1_000)
    assert scheduler.next_deadline() == 601_000
    scheduler.tick(600_999)
    assert huge.status == S.RUNNABLE
    scheduler.tick(601_000)
    assert huge.status == S.FAILED and huge.is_cancelled
    assert huge.status_reason == f"Canceled by JobStateTimeLimit action due to reason: {MAX_RESOURCE}"


def test_runnable_reason_code_tells_max_vcpus_from_an_instance_too_small():
    # maxvCpus 2 on a 4-CPU host with 8 GiB: 3 vCPUs exceed maxvCpus only; 16 GiB exceeds the host.
    scheduler = make(cpus=4, max_vcpus=2)
    over_max, over_host = job("cpu", resources=Resources(vcpus=3)), job("mem", resources=Resources(1, 16384))
    scheduler.submit([over_max, over_host], {}, 0)
    assert over_max.status_reason.startswith(MAX_RESOURCE + " - ")
    assert over_host.status_reason.startswith(RESOURCE_MISCONFIGURATION + " - ")
    # Raising maxvCpus frees the first; the second stays held for its own reason.
    scheduler.set_compute_environment("ce", "local", 4, True)
    assert over_max.status_reason is None and [s.job_id for s in scheduler.schedule(1)] == ["cpu"]
    assert over_host.status_reason.startswith(RESOURCE_MISCONFIGURATION)


def test_time_limit_acts_only_on_its_own_reason_and_on_limits_set_later():
    scheduler = make(cpus=4, max_vcpus=2)
    scheduler.set_queue("q", 1, ["ce"], True, {RESOURCE_MISCONFIGURATION: 600})
    over_max, over_host = job("cpu", resources=Resources(vcpus=3)), job("mem", resources=Resources(1, 16384))
    scheduler.submit([over_max, over_host], {}, 0)
    scheduler.tick(600_000)
    assert over_host.status == S.FAILED and over_host.is_cancelled
    assert over_host.status_reason == f"Canceled by JobStateTimeLimit action due to reason: {RESOURCE_MISCONFIGURATION}"
    assert over_max.status == S.RUNNABLE  # no action for MAX_RESOURCE on this queue
    # UpdateJobQueue adds one: it counts from when the job was parked, so it is due at once.
    scheduler.set_queue("q", 1, ["ce"], True, {MAX_RESOURCE: 700})
    assert scheduler.next_deadline() == 700_000
    scheduler.tick(700_000)
    assert over_max.status == S.FAILED
    assert over_max.status_reason == f"Canceled by JobStateTimeLimit action due to reason: {MAX_RESOURCE}"


def test_raised_time_limit_is_not_applied_at_the_old_deadline():
    scheduler = make(cpus=2)
    scheduler.set_queue("q", 1, ["ce"], True, {MAX_RESOURCE: 600})
    huge = job("huge", resources=Resources(vcpus=64))
    scheduler.submit([huge], {}, 0)
    scheduler.set_queue("q", 1, ["ce"], True, {MAX_RESOURCE: 1200})
    scheduler.tick(600_000)
    assert huge.status == S.RUNNABLE
    scheduler.tick(1_200_000)
    assert huge.status == S.FAILED


def test_cancel_of_a_pending_job_waits_for_its_dependencies():
    scheduler = make(cpus=1)
    first, waiting = job("first"), job("waiting", depends_on=(("first", None),))
    scheduler.submit([first, waiting], {}, 0)
    scheduler.schedule(0)
    scheduler.started("first", 1, 1, {})
    scheduler.cancel("waiting", "not needed", 2)
    # API_CancelJob: a PENDING job is cancelled after all its dependencies complete.
    assert waiting.status == S.PENDING and waiting.is_cancelled
    scheduler.exited("first", 1, 3, OK, {})
    assert waiting.status == S.FAILED and waiting.status_reason == "not needed" and not waiting.attempts
    assert scheduler.schedule(4) == []


def test_cancelled_pending_job_keeps_the_cancel_reason_when_a_dependency_fails():
    scheduler = make(cpus=1)
    first, waiting = job("first"), job("waiting", depends_on=(("first", None),))
    scheduler.submit([first, waiting], {}, 0)
    scheduler.schedule(0)
    scheduler.started("first", 1, 1, {})
    scheduler.cancel("waiting", "not needed", 2)
    scheduler.exited("first", 1, 3, fail(), {})
    assert waiting.status == S.FAILED and waiting.status_reason == "not needed" and waiting.is_cancelled


def test_cancel_of_a_pending_array_parent_ends_when_its_children_complete():
    scheduler = make(cpus=1)
    records = array("arr", 3, deps=[("", "SEQUENTIAL")])
    scheduler.submit(records, {}, 0)
    parent = records[0]
    (start,) = scheduler.schedule(0)
    scheduler.started(start.job_id, 1, 1, {})
    scheduler.cancel("arr", "stop", 2)
    assert parent.is_cancelled and parent.status == S.PENDING
    assert [c.status for c in records[1:]] == [S.RUNNING, S.PENDING, S.PENDING]
    scheduler.exited("arr:0", 1, 3, OK, {})
    assert [c.status for c in records[1:]] == [S.SUCCEEDED, S.FAILED, S.FAILED]
    assert records[2].status_reason == "stop" and parent.status == S.FAILED
    assert parent.summary_updated_at == 3


def test_restore_settles_a_cancelled_pending_job_whose_dependency_finished():
    scheduler = make(cpus=1)
    waiting = job("waiting", depends_on=(("gone", None),))
    waiting.status, waiting.is_cancelled, waiting.stop_reason = S.PENDING, True, "not needed"
    scheduler.restore([waiting], {"gone": S.SUCCEEDED})
    assert waiting.status == S.FAILED and waiting.status_reason == "not needed"


def test_cancelling_an_array_whose_children_all_run_leaves_it_uncancelled():
    scheduler = make(cpus=2)
    records = array("arr", 2)
    scheduler.submit(records, {}, 0)
    for start in scheduler.schedule(0):
        scheduler.started(start.job_id, 1, 1, {})
    scheduler.cancel("arr", "stop", 2)
    for child in records[1:]:
        scheduler.exited(child.id, 1, 3, OK, {})
    assert records[0].status == S.SUCCEEDED and not records[0].is_cancelled


def remote(max_vcpus: int = 4) -> Scheduler:
    """A scheduler whose only compute environment is on a remote engine (a counted pool)."""
    scheduler = Scheduler()
    scheduler.set_pool(CountedPool("remote:ce"))
    scheduler.set_compute_environment("ce", "remote:ce", max_vcpus, True)
    scheduler.set_queue("q", 1, ["ce"], True)
    return scheduler


def test_a_remote_compute_environment_counts_vcpus_and_hands_out_no_devices():
    scheduler = remote(max_vcpus=4)
    # Bigger than this host could ever hold: whether a node can is the remote engine's call.
    scheduler.submit([job(f"j{i}", resources=Resources(vcpus=2, memory_mib=10**6, gpus=8)) for i in range(3)], {}, 0)
    starts = scheduler.schedule(1)
    assert [(s.job_id, s.cpus, s.gpus) for s in starts] == [("j0", (), ()), ("j1", (), ())]  # 4 of maxvCpus 4
    assert scheduler.jobs["j2"].status == S.RUNNABLE and scheduler.jobs["j2"].status_reason is None
    scheduler.submitted("j0", 1, {"handle": "123"})
    scheduler.started("j0", 1, 2, {"node": "n1"})
    assert scheduler.jobs["j0"].current.info == {"handle": "123", "node": "n1"}  # the handle survives the start
    scheduler.exited("j0", 1, 3, OK, {})
    assert [s.job_id for s in scheduler.schedule(4)] == ["j2"]


def test_a_final_exit_is_never_retried():
    scheduler = remote()
    scheduler.submit([job("j", max_attempts=3)], {}, 0)
    scheduler.schedule(1)
    reason = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - Memory specification can not be satisfied"
    scheduler.exited("j", 1, 2, ExitInfo(None, "sbatch refused it", reason, final=True), {})
    assert scheduler.jobs["j"].status == S.FAILED
    assert scheduler.jobs["j"].status_reason.startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    assert len(scheduler.jobs["j"].attempts) == 1


def test_a_time_limit_enforced_by_the_remote_engine_fails_the_job_as_a_timeout():
    scheduler = remote()
    scheduler.submit([job("j", max_attempts=3, timeout_s=60)], {}, 0)
    scheduler.schedule(1)
    scheduler.started("j", 1, 2, {})
    scheduler.exited("j", 1, 3, ExitInfo(None, None, "Job attempt duration exceeded timeout", timed_out=True), {})
    assert scheduler.jobs["j"].status == S.FAILED and scheduler.jobs["j"].status_reason == TIMEOUT_REASON
    assert len(scheduler.jobs["j"].attempts) == 1


def test_an_unreachable_compute_environment_gets_nothing_new_and_jobs_go_to_the_next_one():
    scheduler = Scheduler()
    scheduler.set_pool(CountedPool("remote:cluster"))
    scheduler.set_pool(HostPool("local", (0,), 8192))
    scheduler.set_compute_environment("cluster", "remote:cluster", 4, True)
    scheduler.set_compute_environment("laptop", "local", 1, True)
    scheduler.set_queue("q", 1, ["cluster", "laptop"], True)
    scheduler.set_reachable("cluster", False)
    scheduler.submit([job("a"), job("b")], {}, 0)
    assert [(s.job_id, s.compute_environment) for s in scheduler.schedule(1)] == [("a", "laptop")]
    assert scheduler.jobs["b"].status == S.RUNNABLE
    scheduler.set_reachable("cluster", True)
    assert [(s.job_id, s.compute_environment) for s in scheduler.schedule(2)] == [("b", "cluster")]


def test_vcpus_in_use_counts_placed_and_running_jobs_of_the_queue_only():
    scheduler = make(cpus=5)
    scheduler.set_queue("other", 1, ["ce"], True)
    records = array("arr", 3, resources=Resources(vcpus=1))
    retried = job("retried", resources=Resources(vcpus=2), max_attempts=2)
    elsewhere = job("elsewhere", queue="other")
    scheduler.submit([*records, retried, elsewhere], {}, 0)
    assert scheduler.vcpus_in_use("q") == 0  # queued jobs hold nothing
    scheduler.schedule(0)  # the 3 children and retried fill the 5 CPUs; elsewhere waits
    assert elsewhere.status == S.RUNNABLE and records[0].status != S.RUNNABLE
    assert scheduler.vcpus_in_use("q") == 5
    assert scheduler.vcpus_in_use("other") == 0
    scheduler.started("retried", 1, 1, {})
    scheduler.exited("retried", 1, 2, fail(), {})
    assert retried.status == S.RUNNABLE and scheduler.vcpus_in_use("q") == 3
    fresh = make(cpus=5)
    fresh.set_queue("other", 1, ["ce"], True)
    fresh.restore(copy.deepcopy([*records, retried, elsewhere]), {})
    assert (fresh.vcpus_in_use("q"), fresh.vcpus_in_use("other")) == (3, 0)
    for child in records[1:]:
        scheduler.started(child.id, 1, 3, {})
        scheduler.exited(child.id, 1, 4, OK, {})
    run_to_end(scheduler, now=5)
    assert all(r.status == S.SUCCEEDED for r in [*records, retried, elsewhere])
    assert scheduler.vcpus_in_use("q") == 0 and scheduler.vcpus_in_use("other") == 0
    assert scheduler.vcpus_in_use("no-such-queue") == 0
