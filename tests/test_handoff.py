"""Hand-off in the pure core: successors placed ahead on running siblings' devices (issue 9)."""

from __future__ import annotations

import copy

import pytest
from test_scheduler import OK, array, job, make

from genobatch.core.action import StartAttempt, StopAttempt, WithdrawAttempt
from genobatch.core.handoff import HANDOFF_DEPTH, HANDOFF_WAIT_MS, SHORT_RUN_MS
from genobatch.core.job import Job, Resources
from genobatch.core.scheduler import Scheduler
from genobatch.core.status import JobStatus

pytestmark = pytest.mark.no_store

S = JobStatus


def handing_off(cpus: int = 2) -> Scheduler:
    scheduler = make(cpus=cpus)
    scheduler.handoffs.pools.add("local")
    return scheduler


def short_array(scheduler: Scheduler, size: int) -> list[Job]:
    """An array whose first children ran short: from then on its children are placed ahead."""
    jobs = array("arr", size)
    scheduler.submit(jobs, {}, 0)
    first = scheduler.schedule(0)
    assert [(a.job_id, a.after) for a in first] == [("arr:0", None), ("arr:1", None)]  # not short yet
    scheduler.started("arr:0", 1, 1, {})
    scheduler.exited("arr:0", 1, 3, OK, {})
    return jobs


def free(scheduler: Scheduler) -> tuple[int, int]:
    pool = scheduler.pools["local"]
    return len(pool.free_cpus), pool.free_memory_mib


def test_a_short_array_gets_chains_of_successors_on_its_running_siblings_devices():
    scheduler = handing_off()
    size = 2 * HANDOFF_DEPTH + 6
    jobs = short_array(scheduler, size)
    starts = scheduler.schedule(4)
    # arr:2 takes the freed CPU; the next ones wait on arr:1's and arr:2's slots in turn, each
    # on the one before it on its slot, HANDOFF_DEPTH per slot.
    assert [(a.job_id, a.after) for a in starts[:4]] == [
        ("arr:2", None),
        ("arr:3", ("arr:1", 1)),
        ("arr:4", ("arr:2", 1)),
        ("arr:5", ("arr:3", 1)),
    ]
    assert len(starts) == 1 + 2 * HANDOFF_DEPTH
    by_id = {a.job_id: a for a in starts}
    assert {a.cpus for a in starts if a.after} == {by_id["arr:2"].cpus, scheduler.jobs["arr:1"].current.cpus}
    assert jobs[-1].status == S.RUNNABLE
    assert free(scheduler) == (0, 8192 - 2 * 2048)  # successors take nothing from the pool
    assert scheduler.compute_environments["ce"].used_vcpus == 2


def test_a_holders_end_passes_its_devices_to_its_successor_and_nothing_is_overcommitted():
    scheduler = handing_off()
    size = 2 * HANDOFF_DEPTH + 6
    short_array(scheduler, size)
    scheduler.schedule(4)
    scheduler.started("arr:1", 1, 5, {})
    scheduler.exited("arr:1", 1, 6, OK, {})
    assert free(scheduler) == (0, 8192 - 2 * 2048)  # arr:3 owns arr:1's CPU now
    # The slot's chain is one shorter: one more successor is placed at its end.
    (ahead,) = scheduler.schedule(7)
    assert ahead.job_id == f"arr:{2 * HANDOFF_DEPTH + 3}" and ahead.after is not None
    now = 8
    while True:  # run everything in the order the backend would: each slot's chain in turn
        starts = scheduler.schedule(now)
        live = sorted(
            (j for j in scheduler.jobs.values() if j.status in (S.STARTING, S.RUNNING) and j.parent_id),
            key=lambda j: j.current.placed_at,
        )
        owners = [j for j in live if j.id not in scheduler.handoffs.waiting]
        assert len(owners) <= 2, "more attempts own devices than the host has CPUs"
        if not live and not starts:
            break
        for owner in owners:
            scheduler.started(owner.id, owner.current.number, now, {})
            scheduler.exited(owner.id, owner.current.number, now + 1, OK, {})
        now += 2
    assert free(scheduler) == (2, 8192)
    assert scheduler.compute_environments["ce"].used_vcpus == 0
    assert "arr" not in scheduler.jobs or scheduler.jobs["arr"].status == S.SUCCEEDED


def test_separate_short_jobs_of_one_queue_and_resources_hand_off_like_an_array():
    """A Map state's tasks are separate jobs: once one of them ran short, the next are placed
    ahead too - but only behind a job of the same queue that asks for the same resources."""
    scheduler = handing_off(cpus=1)
    big = Resources(vcpus=1, memory_mib=4096)
    scheduler.submit([job(f"t{i}") for i in range(4)], {}, 0)
    assert [(a.job_id, a.after) for a in scheduler.schedule(0)] == [("t0", None)]  # not short yet
    scheduler.started("t0", 1, 1, {})
    scheduler.exited("t0", 1, 3, OK, {})
    starts = scheduler.schedule(4)
    assert [(a.job_id, a.after) for a in starts] == [("t1", None), ("t2", ("t1", 1)), ("t3", ("t2", 1))]
    scheduler.submit([job("other", resources=big)], {}, 5)
    assert scheduler.schedule(5) == [] and scheduler.jobs["other"].status == S.RUNNABLE
    assert free(scheduler) == (0, 8192 - 2048)  # the successors take nothing from the pool


def short_family_running_t1() -> Scheduler:
    """One slot; t0 ran short (its family is short), and t1 started on the slot at 5 ms."""
    scheduler = handing_off(cpus=1)
    scheduler.submit([job("t0"), job("t1")], {}, 0)
    scheduler.schedule(0)
    scheduler.started("t0", 1, 1, {})
    scheduler.exited("t0", 1, 3, OK, {})
    assert [(a.job_id, a.after) for a in scheduler.schedule(4)] == [("t1", None)]
    scheduler.started("t1", 1, 5, {})
    return scheduler


def test_nothing_is_placed_behind_a_holder_that_has_run_long():
    """The family ran short before, but the running job has been running for longer than a short
    run: a new job waits RUNNABLE (cancellable), not STARTING behind it."""
    scheduler = short_family_running_t1()
    scheduler.submit([job("t2")], {}, 6 + SHORT_RUN_MS)
    assert scheduler.schedule(6 + SHORT_RUN_MS) == [] and scheduler.jobs["t2"].status == S.RUNNABLE


def test_a_job_submitted_while_every_slot_is_taken_waits_runnable():
    """Its family ran short and the running job started just now, but it was placed before the
    new job arrived: the new job waits RUNNABLE (cancellable), as on AWS."""
    scheduler = short_family_running_t1()
    late = job("late")
    late.created_at = 6
    scheduler.submit([late], {}, 6)
    assert scheduler.schedule(6) == [] and late.status == S.RUNNABLE


def test_plain_jobs_and_long_arrays_get_no_successors():
    scheduler = handing_off(cpus=1)
    scheduler.submit([job("a"), job("b")], {}, 0)
    assert [(a.job_id, a.after) for a in scheduler.schedule(0)] == [("a", None)]
    scheduler.started("a", 1, 1, {})
    scheduler.exited("a", 1, 2 + SHORT_RUN_MS, OK, {})  # a long run: b waits normally
    assert [(a.job_id, a.after) for a in scheduler.schedule(3 + SHORT_RUN_MS)] == [("b", None)]
    long_run = handing_off(cpus=1)
    long_run.submit(array("arr", 3), {}, 0)
    long_run.schedule(0)
    long_run.started("arr:0", 1, 1, {})
    long_run.exited("arr:0", 1, 2 + SHORT_RUN_MS, OK, {})
    assert [(a.job_id, a.after) for a in long_run.schedule(3 + SHORT_RUN_MS)] == [("arr:1", None)]


def test_nothing_goes_ahead_of_a_job_that_waits_normally():
    scheduler = handing_off()
    short_array(scheduler, 6)
    # First in queue order, and not array children: one takes the free CPU, the other waits.
    scheduler.submit([job("urgent", priority=50), job("urgent2", priority=50)], {}, 4)
    assert [(a.job_id, a.after) for a in scheduler.schedule(4)] == [("urgent", None)]
    assert scheduler.jobs["arr:2"].status == S.RUNNABLE


def test_a_successor_still_waiting_is_withdrawn_and_is_runnable_again_not_a_failed_attempt():
    scheduler = handing_off()
    jobs = short_array(scheduler, 6)
    scheduler.schedule(4)  # arr:3 and arr:5 wait on arr:1's slot, arr:4 on arr:2's
    scheduler.started("arr:1", 1, 5, {})
    assert scheduler.next_deadline() == 4 + HANDOFF_WAIT_MS
    actions = scheduler.tick(4 + HANDOFF_WAIT_MS)
    assert actions == [WithdrawAttempt(f"arr:{i}", 1) for i in (3, 4, 5)]
    assert scheduler.tick(5 + HANDOFF_WAIT_MS) == []  # asked once
    scheduler.not_started("arr:3", 1, 6 + HANDOFF_WAIT_MS)
    successor = jobs[4]
    assert successor.status == S.RUNNABLE and successor.attempts == [] and successor.status_reason is None
    # arr:5, behind it, now waits on arr:1 itself (and that is written with it).
    assert jobs[6].current.after == ("arr:1", 1) and "arr:5" in scheduler.dirty
    assert free(scheduler) == (0, 8192 - 2 * 2048)  # arr:1 still holds its CPU
    scheduler.not_started("arr:5", 1, 6 + HANDOFF_WAIT_MS)
    scheduler.not_started("arr:4", 1, 6 + HANDOFF_WAIT_MS)
    # The array is no longer short: arr:3 waits for a free CPU, not behind arr:1 again.
    assert scheduler.schedule(7 + HANDOFF_WAIT_MS) == []
    scheduler.exited("arr:1", 1, 8 + HANDOFF_WAIT_MS, OK, {})
    (start,) = scheduler.schedule(9 + HANDOFF_WAIT_MS)
    assert (start.job_id, start.attempt, start.after) == ("arr:3", 1, None)


def test_a_successor_that_started_is_not_withdrawn():
    scheduler = handing_off()
    short_array(scheduler, 4)
    scheduler.schedule(4)
    scheduler.started("arr:1", 1, 5, {})
    scheduler.exited("arr:1", 1, 6, OK, {})
    scheduler.started("arr:3", 1, 7, {})
    assert WithdrawAttempt("arr:3", 1) not in scheduler.tick(4 + HANDOFF_WAIT_MS)


def test_terminating_a_waiting_successor_leaves_its_holder_the_devices():
    scheduler = handing_off()
    jobs = short_array(scheduler, 5)
    scheduler.schedule(4)  # arr:2 on the free CPU, arr:3 waits on arr:1, arr:4 on arr:2
    assert scheduler.terminate("arr:3", "stop it", 5) == [StopAttempt("arr:3", 1)]
    scheduler.exited("arr:3", 1, 6, fail_to_start(), {})  # the backend dropped it before it started
    assert jobs[4].status == S.FAILED and jobs[4].status_reason == "stop it"
    assert free(scheduler) == (0, 8192 - 2 * 2048)
    # arr:1 may take another successor, and its devices stay accounted once.
    scheduler.submit([job("late", parent_id="arr", resources=jobs[1].resources)], {}, 6)
    (ahead,) = scheduler.schedule(7)
    assert (ahead.job_id, ahead.after) == ("late", ("arr:1", 1))
    scheduler.started("arr:1", 1, 8, {})
    scheduler.exited("arr:1", 1, 9, OK, {})
    assert free(scheduler) == (0, 8192 - 2 * 2048)


def fail_to_start():
    from genobatch.core.retry import ExitInfo

    return ExitInfo(None, None, "Task failed to start")


def test_restore_keeps_a_waiting_successor_on_its_holders_devices():
    scheduler = handing_off()
    jobs = short_array(scheduler, 5)
    scheduler.schedule(4)  # arr:2 on the free CPU, arr:3 waits on arr:1, arr:4 on arr:2
    scheduler.started("arr:1", 1, 5, {})
    live = [copy.deepcopy(j) for j in jobs if j.status not in (S.SUCCEEDED, S.FAILED)]
    fresh = handing_off()
    in_flight = fresh.restore(live, {})
    assert {j.id for j in in_flight} == {"arr:1", "arr:2", "arr:3", "arr:4"}
    assert free(fresh) == (0, 8192 - 2 * 2048)  # the successors reserved nothing of their own
    assert fresh.handoffs.waiting == {"arr:3": ("arr:1", 1), "arr:4": ("arr:2", 1)}
    fresh.exited("arr:1", 1, 6, OK, {})
    assert free(fresh) == (0, 8192 - 2 * 2048)
    for job_id in ("arr:3", "arr:2", "arr:4"):
        fresh.started(job_id, 1, 7, {})
        fresh.exited(job_id, 1, 8, OK, {})
    assert free(fresh) == (2, 8192)


def test_an_attempt_a_crash_kept_from_starting_is_placed_again_under_its_number():
    scheduler = handing_off(cpus=1)
    j = job("a", max_attempts=1)
    scheduler.submit([j], {}, 0)
    scheduler.schedule(0)
    scheduler.not_started("a", 1, 1)
    assert j.status == S.RUNNABLE and j.attempts == []
    (again,) = scheduler.schedule(2)
    assert isinstance(again, StartAttempt) and again.attempt == 1
    scheduler.started("a", 1, 3, {})
    scheduler.exited("a", 1, 4, OK, {})
    assert j.status == S.SUCCEEDED and len(j.attempts) == 1
    assert free(scheduler) == (1, 8192)


def test_successors_waiting_on_a_holder_count_no_vcpus_in_use():
    scheduler = handing_off()
    short_array(scheduler, 2 * HANDOFF_DEPTH + 6)
    starts = scheduler.schedule(4)
    assert sum(1 for a in starts if a.after) == 2 * HANDOFF_DEPTH  # STARTING, on the holders' CPUs
    assert scheduler.vcpus_in_use("q") == 2
    scheduler.started("arr:1", 1, 5, {})
    scheduler.exited("arr:1", 1, 6, OK, {})  # its devices pass to arr:3, which now holds them
    scheduler.started("arr:3", 1, 6, {})
    assert scheduler.vcpus_in_use("q") == 2
