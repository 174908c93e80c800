"""The store's job rows as a restart reads them back (genobatch.store.jobs.load_live), on a real database.

A restart decodes each distinct state text once and lets rows share the result, and restored array
children share their parent's objects: the records it builds must still be independent where the
scheduler mutates them, and equal to what was written.
"""

from __future__ import annotations

from harness import fresh_database_url

from genobatch.core.array import expand_array
from genobatch.core.job import Attempt, Job, Resources
from genobatch.core.status import JobStatus
from genobatch.store import jobs as job_rows
from genobatch.store.database import open_database


def spec_of(job: Job) -> dict:
    return {"scheduling": job_rows.scheduling_spec(job), "container": {"command": ["true"]}}


def test_load_live_rebuilds_queued_and_in_flight_jobs_independently(tmp_path):
    database = open_database(fresh_database_url() or f"sqlite:///{tmp_path / 'store.db'}")
    parent = Job("p", "arr", "q", 1, 100, Resources(2, 256), priority=3, max_attempts=2, array_size=3)
    parent.status, parent.summary = JobStatus.PENDING, {"RUNNABLE": 3}
    children = expand_array(parent, [])
    for child in children:
        child.status = JobStatus.RUNNABLE
    # Two in-flight jobs whose states are the same text: each must get attempts of its own.
    running = []
    for seq, job_id in ((2, "r1"), (3, "r2")):
        job = Job(job_id, "run", "q", seq, 100, Resources(1, 64), status=JobStatus.RUNNING)
        job.attempts = [Attempt(1, "ce", cpus=(0,), placed_at=5, started_at=6, info={"pid": 7})]
        running.append(job)
    done = Job("d", "done", "q", 4, 100, status=JobStatus.SUCCEEDED)
    rows = [(parent, "def", None, spec_of(parent))] + [(c, "def", None, None) for c in children]
    rows += [(job, "def", None, spec_of(job)) for job in [*running, done]]
    with database.begin() as conn:
        job_rows.insert_jobs(conn, rows)

    with database.connect() as conn:
        loaded = {job.id: job for job in job_rows.load_live(conn)}

    assert sorted(loaded) == ["p", "p:0", "p:1", "p:2", "r1", "r2"]  # the final job is not live
    restored_parent = loaded["p"]
    assert restored_parent.array_size == 3 and restored_parent.summary == {"RUNNABLE": 3}
    for index in range(3):
        child = loaded[f"p:{index}"]
        assert (child.status, child.array_index, child.array_size) == (JobStatus.RUNNABLE, index, None)
        assert (child.resources, child.priority, child.max_attempts) == (Resources(2, 256), 3, 2)  # the parent's spec
        assert (child.name, child.queue, child.seq, child.created_at, child.parent_id) == ("arr", "q", 1, 100, "p")
    first, second = loaded["r1"], loaded["r2"]
    assert first.attempts == second.attempts == running[0].attempts
    first.attempts[0].info["released"] = True  # what the scheduler does when an attempt ends
    first.attempts.append(Attempt(2, "ce"))
    assert second.attempts == running[1].attempts  # untouched: nothing mutable is shared
    restored_parent.summary["RUNNABLE"] -= 1
    with database.connect() as conn:
        again = {job.id: job for job in job_rows.load_live(conn)}
    assert again["p"].summary == {"RUNNABLE": 3} and again["r2"].attempts[0].info == {"pid": 7}
