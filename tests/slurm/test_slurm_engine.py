"""The Slurm engine's calls against a real single-node Slurm cluster (scripts/slurm-cluster.sh).

Every test submits real batch jobs with sbatch and reads them back with squeue/sacct; nothing of
Slurm or genobatch is replaced.
"""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest

from genobatch.backends.base import AttemptSpec, attempt_name
from genobatch.backends.outcome import OOM_REASON
from genobatch.backends.remote import Refused, RemoteState, RemoteUnavailable, Submitted
from genobatch.backends.slurm import NOT_FOUND_REASON, SlurmEngine, engine_from_tags
from genobatch.backends.slurm_format import batch_script, time_limit_minutes

pytestmark = pytest.mark.no_store


@pytest.fixture
def engine(slurm_cluster) -> SlurmEngine:
    engine = engine_from_tags("slurm-ce", {"genobatch:slurm-partition": "batch"})
    engine.probe()
    return engine


def make_spec(tmp_path, command, *, memory_mib=128, vcpus=1, gpu_count=0, environment=None, timeout_s=None):
    job_id = uuid.uuid4().hex[:12]
    return AttemptSpec(
        job_id=job_id,
        attempt=1,
        command=tuple(command),
        environment={"AWS_BATCH_JOB_ID": job_id, **(environment or {})},
        attempt_dir=str(tmp_path / job_id),
        vcpus=vcpus,
        memory_mib=memory_mib,
        gpu_count=gpu_count,
        timeout_s=timeout_s,
        name=attempt_name(job_id, 1),
    )


def submitted(engine: SlurmEngine, *specs: AttemptSpec) -> list[str]:
    results = engine.submit(list(specs))
    assert all(isinstance(r, Submitted) for r in results), results
    return [r.handle for r in results]


def wait_ended(engine: SlurmEngine, handles: list[str], timeout: float = 60) -> dict[str, RemoteState]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = engine.states(handles)
        if len(states) == len(handles) and all(s.phase == "ended" for s in states.values()):
            return states
        time.sleep(0.3)
    raise AssertionError(f"not ended after {timeout}s: {states}")


def read_log(spec: AttemptSpec) -> str:
    with open(os.path.join(spec.attempt_dir, "output.log")) as fh:
        return fh.read()


def test_attempt_runs_in_its_work_dir_with_its_environment_output_and_usage(engine, tmp_path):
    spec = make_spec(
        tmp_path,
        ["sh", "-c", 'echo "id=$AWS_BATCH_JOB_ID v=$ODD cwd=$PWD gpus=[$CUDA_VISIBLE_DEVICES]"; exit 3'],
        environment={"ODD": "a 'quoted' $value"},
    )
    (handle,) = submitted(engine, spec)
    state = wait_ended(engine, [handle])[handle]
    assert state.exit_code == 3
    assert state.reason is None and not state.timed_out and not state.final
    assert read_log(spec) == (f"id={spec.job_id} v=a 'quoted' $value cwd={spec.attempt_dir}/work gpus=[]\n")
    assert state.started_at_ms and state.stopped_at_ms >= state.started_at_ms
    # sacct's figures, in the trace's keys (the cluster keeps accounting).
    assert engine.accounting is True
    assert state.usage["hostname"] == "localhost"
    assert {"cpu_time_ms", "cpu_user_ms", "cpu_sys_ms", "realtime_ms"} <= set(state.usage)


def test_usage_reports_the_memory_peak_and_cpu_time_of_a_busy_job(engine, tmp_path):
    script = "x = bytearray(150 * 1024 * 1024)\nimport time\nt = time.time()\nwhile time.time() - t < 4: pass\n"
    spec = make_spec(tmp_path, ["python3", "-c", script], memory_mib=400)
    (handle,) = submitted(engine, spec)
    usage = wait_ended(engine, [handle])[handle].usage
    assert usage["peak_rss"] >= 150 * 1024 * 1024, usage
    # A busy loop of 4 s: its CPU time is counted (the host's 2 cores are shared, so not all 4 s).
    assert 500 <= usage["cpu_time_ms"] <= usage["realtime_ms"] + 1000, usage
    assert usage["realtime_ms"] >= 3000, usage


def test_out_of_memory_ends_with_awss_reason(engine, tmp_path):
    spec = make_spec(tmp_path, ["python3", "-c", "x = bytearray(600 * 1024 * 1024)"], memory_mib=100)
    (handle,) = submitted(engine, spec)
    state = wait_ended(engine, [handle])[handle]
    assert state.reason == OOM_REASON
    assert state.exit_code == 137
    assert state.info["slurm_state"] == "OUT_OF_MEMORY"


def test_gpus_come_from_gres(engine, tmp_path):
    two = make_spec(tmp_path, ["sh", "-c", "echo $CUDA_VISIBLE_DEVICES"], gpu_count=2)
    none = make_spec(tmp_path, ["sh", "-c", "echo [$CUDA_VISIBLE_DEVICES]"])
    handles = submitted(engine, two, none)
    states = wait_ended(engine, handles)
    assert all(s.exit_code == 0 for s in states.values())
    assert sorted(read_log(two).strip().split(",")) == ["0", "1"]
    assert read_log(none).strip() == "[]"


def test_more_memory_than_any_node_is_a_final_refusal_with_slurms_message(engine, tmp_path):
    too_big, fine = make_spec(tmp_path, ["true"], memory_mib=10_000_000), make_spec(tmp_path, ["true"])
    refused, accepted = engine.submit([too_big, fine])
    assert isinstance(refused, Refused) and refused.misconfiguration
    assert "Memory specification can not be satisfied" in refused.message
    assert isinstance(accepted, Submitted)  # a refusal is per job
    too_many_gpus = engine.submit([make_spec(tmp_path, ["true"], gpu_count=64)])[0]
    assert isinstance(too_many_gpus, Refused) and too_many_gpus.misconfiguration


def test_an_executable_that_is_not_found_cannot_start(engine, tmp_path):
    spec = make_spec(tmp_path, ["no-such-executable-here", "arg"])
    (handle,) = submitted(engine, spec)
    state = wait_ended(engine, [handle])[handle]
    assert state.reason == NOT_FOUND_REASON
    assert state.exit_code is None


def test_signal_sends_sigterm_and_cancel_ends_the_job(engine, tmp_path):
    graceful = make_spec(tmp_path, ["sh", "-c", 'trap "echo got TERM; exit 9" TERM; echo up; sleep 60 & wait'])
    stubborn = make_spec(tmp_path, ["sh", "-c", 'trap "echo ignored" TERM; echo up; while :; do sleep 1; done'])
    both = (graceful, stubborn)
    handles = submitted(engine, *both)
    deadline = time.monotonic() + 30
    while not all(
        os.path.exists(os.path.join(s.attempt_dir, "output.log")) and "up" in read_log(s) for s in (graceful, stubborn)
    ):
        assert time.monotonic() < deadline, engine.states(handles)
        time.sleep(0.2)
    engine.signal(handles)
    state = wait_ended(engine, [handles[0]])[handles[0]]
    assert state.exit_code == 9 and "got TERM" in read_log(graceful)
    time.sleep(1)
    assert engine.states([handles[1]])[handles[1]].phase == "running"  # it ignored SIGTERM
    engine.cancel([handles[1]])
    # SIGKILL now: not Slurm's graceful kill, which waits KillWait (30 s) before its SIGKILL.
    state = wait_ended(engine, [handles[1]], timeout=10)[handles[1]]
    assert state.exit_code == 137


def test_signal_removes_a_queued_job_at_once(engine, tmp_path):
    # More CPUs than the node has free while the blocker runs: it stays queued.
    spec = make_spec(tmp_path, ["true"], vcpus=os.cpu_count() or 2)
    blocker = make_spec(tmp_path, ["sleep", "60"], vcpus=16)
    blocker_handle, handle = submitted(engine, blocker, spec)
    try:
        assert engine.states([handle])[handle].phase == "queued"
        engine.signal([handle])
        state = wait_ended(engine, [handle], timeout=10)[handle]
        assert state.exit_code is None and state.started_at_ms is None
    finally:
        engine.cancel([blocker_handle])


def test_states_of_many_jobs_take_one_squeue_call_per_poll(engine, tmp_path):
    specs = [make_spec(tmp_path, ["true"]) for _ in range(40)]
    handles = submitted(engine, *specs)
    wait_ended(engine, handles)
    before = dict(engine.calls)
    states = engine.states(handles)
    assert len(states) == 40
    assert engine.calls["squeue"] - before.get("squeue", 0) == 1
    assert engine.calls.get("sacct", 0) - before.get("sacct", 0) <= 1


def test_find_maps_names_to_job_ids(engine, tmp_path):
    specs = [make_spec(tmp_path, ["true"]) for _ in range(3)]
    handles = submitted(engine, *specs)
    names = [s.name for s in specs]
    assert engine.find([*names, "gb_never_submitted_1"]) == dict(zip(names, handles, strict=True))


@pytest.mark.slow
def test_slurms_time_limit_ends_the_job_as_timed_out(slurm_cluster, tmp_path):
    # No margin: --time is one minute; Slurm enforces limits on a ~30 s sweep.
    engine = SlurmEngine("slurm-ce", "batch", time_limit_margin_s=-30)
    engine.probe()
    spec = make_spec(tmp_path, ["sleep", "600"], timeout_s=1)
    assert "--time=1" in engine.sbatch_args(spec)
    (handle,) = submitted(engine, spec)
    state = wait_ended(engine, [handle], timeout=150)[handle]
    assert state.timed_out
    assert state.info["slurm_state"] == "TIMEOUT"


@pytest.mark.slow
def test_an_unreachable_controller_is_unavailable_and_nothing_is_sent(slurm_cluster, tmp_path, monkeypatch):
    # The same cluster's configuration with slurmctld's port moved to one where nothing listens.
    with open(slurm_cluster) as fh:
        text = re.sub(r"^SlurmctldPort=\d+", "SlurmctldPort=9", fh.read(), flags=re.MULTILINE)
    conf = tmp_path / "slurm.conf"
    conf.write_text(text)
    monkeypatch.setenv("SLURM_CONF", str(conf))
    engine = SlurmEngine("slurm-ce", "batch", command_timeout_s=60)
    with pytest.raises(RemoteUnavailable, match="Slurm partition batch: sinfo failed: .*Unable to contact"):
        engine.probe()
    engine.accounting, engine.max_array_index = False, 0  # as learnt before the controller went away
    spec = make_spec(tmp_path, ["true"])
    with pytest.raises(RemoteUnavailable, match="cannot be reached"):
        engine.submit([spec])
    assert engine.calls["sbatch"] == 1


def test_a_missing_partition_is_unavailable_naming_it(slurm_cluster):
    engine = engine_from_tags("slurm-ce", {"genobatch:slurm-partition": "nosuchpartition"})
    with pytest.raises(RemoteUnavailable, match="no partition 'nosuchpartition'"):
        engine.probe()


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({}, "genobatch:slurm-partition is required"),
        ({"genobatch:slurm-partition": "a b"}, "genobatch:slurm-partition: 'a b' is not a Slurm name"),
        ({"genobatch:slurm-partition": "p", "genobatch:slurm-qos": "q;x"}, "genobatch:slurm-qos: 'q;x'"),
        ({"genobatch:slurm-partition": "p", "genobatch:slurm-options": "-c 4"}, "'-c' is not a long sbatch option"),
        ({"genobatch:slurm-partition": "p", "genobatch:slurm-options": "--mem=1G"}, "--mem is set by genobatch"),
        ({"genobatch:slurm-partition": "p", "genobatch:slurm-options": "--x='"}, "cannot be split"),
    ],
)
def test_engine_from_tags_names_the_bad_tag(tags, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        engine_from_tags("ce", tags)


def test_sbatch_options_from_the_tags_and_the_attempt(tmp_path):
    engine = engine_from_tags(
        "ce",
        {
            "genobatch:slurm-partition": "gpu",
            "genobatch:slurm-account": "lab",
            "genobatch:slurm-qos": "long",
            "genobatch:slurm-options": "--constraint='a&b' --exclusive",
        },
    )
    spec = make_spec(tmp_path, ["true"], memory_mib=2048, vcpus=4, gpu_count=2, timeout_s=3600)
    args = engine.sbatch_args(spec)
    for expected in (
        f"--job-name={spec.name}",
        "--partition=gpu",
        "--account=lab",
        "--qos=long",
        "--cpus-per-task=4",
        "--mem=2048M",
        "--gres=gpu:2",
        f"--time={time_limit_minutes(3600)}",
        f"--output={spec.attempt_dir}/output.log",
        f"--chdir={spec.attempt_dir}/work",
        "--constraint=a&b",
        "--exclusive",
    ):
        assert expected in args
    assert time_limit_minutes(3600) == 62  # beyond genobatch's timer, its 30 s grace and a margin
    assert "CUDA_VISIBLE_DEVICES" not in batch_script(spec)  # Slurm's gres sets it


def array_children(tmp_path, size: int, command, attempt: int = 1) -> list[AttemptSpec]:
    """Children of one array parent, laid out as the engine lays them out (<jobs>/<parent>:<i>/<attempt>)."""
    parent = uuid.uuid4().hex[:12]
    return [
        AttemptSpec(
            job_id=f"{parent}:{index}",
            attempt=attempt,
            command=tuple(command),
            environment={"AWS_BATCH_JOB_ID": f"{parent}:{index}", "AWS_BATCH_JOB_ARRAY_INDEX": str(index)},
            attempt_dir=str(tmp_path / "jobs" / f"{parent}:{index}" / str(attempt)),
            vcpus=1,
            memory_mib=64,
            name=attempt_name(f"{parent}:{index}", attempt),
        )
        for index in range(size)
    ]


def test_siblings_go_out_as_one_slurm_job_array(engine, tmp_path):
    children = array_children(tmp_path, 6, ["sh", "-c", 'echo "child $AWS_BATCH_JOB_ARRAY_INDEX in $PWD"'])
    before = engine.calls.get("sbatch", 0)
    handles = submitted(engine, *children)
    assert engine.calls["sbatch"] - before == 1
    array_job = handles[0].split("_")[0]
    assert handles == [f"{array_job}_{i}" for i in range(6)]
    states = wait_ended(engine, handles)
    assert {s.exit_code for s in states.values()} == {0}
    for index, child in enumerate(children):
        assert read_log(child) == f"child {index} in {child.attempt_dir}/work\n"
    assert all("cpu_time_ms" in s.usage for s in states.values())
    # Found again by their own names, through the array's name and their task index.
    names = [c.name for c in children]
    assert engine.find([*names, names[0].replace("_0_1", "_99_1")]) == dict(zip(names, handles, strict=True))


def test_an_array_child_whose_executable_is_missing_cannot_start(engine, tmp_path):
    children = array_children(tmp_path, 2, ["no-such-executable-here"])
    handles = submitted(engine, *children)
    states = wait_ended(engine, handles)
    assert {s.reason for s in states.values()} == {NOT_FOUND_REASON}


def test_indices_beyond_the_clusters_max_array_size_go_out_as_single_jobs(engine, tmp_path):
    engine.max_array_index = 2  # as on a cluster with MaxArraySize=3
    children = array_children(tmp_path, 5, ["true"])
    handles = submitted(engine, *children)
    assert [h.count("_") for h in handles] == [1, 1, 1, 0, 0]
    assert {s.exit_code for s in wait_ended(engine, handles).values()} == {0}


def test_without_accounting_states_come_from_squeue_alone(engine, tmp_path):
    engine.accounting = False  # as on a cluster without slurmdbd: sacct is never called
    specs = [make_spec(tmp_path, ["sh", "-c", "exit 5"]), make_spec(tmp_path, ["true"])]
    handles = submitted(engine, *specs)
    before = engine.calls.get("sacct", 0)
    states = wait_ended(engine, handles)
    assert [states[h].exit_code for h in handles] == [5, 0]
    assert all(s.usage == {} for s in states.values())
    assert engine.calls.get("sacct", 0) == before
