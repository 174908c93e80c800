"""The Slurm engine: a compute environment whose attempts run as batch jobs on a Slurm cluster.

Configured by the compute environment's tags (the wire contract, see
:mod:`genobatch.backends.registry`): ``genobatch:slurm-partition`` (required),
``genobatch:slurm-account``, ``genobatch:slurm-qos`` and ``genobatch:slurm-options`` (extra
``sbatch`` options, ``--name=value`` or ``--flag`` words). The cluster is the one the server's
Slurm commands reach (``SLURM_CONF`` in the server's environment, or the host's own
configuration); ``scripts/slurm-cluster.sh`` starts a private single-node one.

How an attempt maps onto Slurm (scripts and field parsing in :mod:`genobatch.backends.slurm_format`):

* **sbatch** (a few calls in parallel): ``--job-name`` is the attempt's stable name
  (``spec.name``), ``--cpus-per-task``, ``--mem``, ``--gres=gpu:N``; ``--output`` is
  ``attempt_dir/output.log`` (attempt directories must be on a disk the nodes share) and the job
  runs in ``attempt_dir/work``. ``--time`` is a backstop beyond genobatch's own timer and its 30 s
  SIGKILL grace (Slurm counts time limits in minutes). The job's environment is written into the
  batch script, so ``sbatch`` itself runs with a clean environment (a job variable such as
  ``SBATCH_TIMELIMIT`` must not become an sbatch option). An executable that is not found leaves
  a marker file, reported as ``CannotStartContainerError`` like the local backend does.
* **Array children** handed over together (siblings of one parent, same attempt and resources)
  go out as one Slurm job array: one sbatch call, one script whose tasks each run their own
  child; the handle of a child is ``<array job id>_<index>``. A cluster whose ``MaxArraySize``
  is too small for the indices gets single jobs instead. ``bench/slurm_throughput.py`` measures
  both against raw ``sbatch --array``.
* **States** of all tracked attempts come from one ``squeue`` call per poll (pipe-separated
  fields; ``squeue --json`` costs 2.2 s and 11 MB for 3,000 jobs here against 0.1 s), and, where
  the cluster keeps accounting, one ``sacct`` call for the attempts that ended in that poll:
  CPU time, MaxRSS, MaxVMSize and elapsed time become the trace's usage keys
  (:mod:`genobatch.backends.usage`). ``sacct`` also answers for jobs ``squeue`` has forgotten
  (after ``MinJobAge``).
* **Exits**: ``OUT_OF_MEMORY`` is AWS's ``OutOfMemoryError: Container killed due to memory
  usage`` (exit 137 unless the job exited with its own code); ``TIMEOUT`` is a timed-out attempt;
  a job killed by signal N exits 128+N, as a container's would.
* **Refusals**: ``sbatch`` refusing the resources (``Memory specification can not be
  satisfied``, ``Requested node configuration is not available``, ...) ends the attempt final, as
  ``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT`` with Slurm's message. A controller that cannot be
  reached raises :class:`~genobatch.backends.remote.RemoteUnavailable`: nothing is lost, the
  backend retries.
* **Stops**: ``scancel --batch --signal=TERM`` (the job's main process, as ``docker stop``
  does), queued jobs removed at once; SIGKILL is ``scancel --batch --signal=KILL``.
* **find** looks names (and the names of the arrays children went out in) up with ``squeue
  --name`` and, with accounting, ``sacct --name``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from genobatch.backends.base import AttemptSpec
from genobatch.backends.host import LOG_FILE
from genobatch.backends.launch import inherited_environment
from genobatch.backends.outcome import OOM_REASON
from genobatch.backends.remote import (
    FAILED_TO_START,
    Refused,
    RemoteEngine,
    RemoteState,
    RemoteUnavailable,
    SubmitResult,
    Submitted,
    Uncertain,
)
from genobatch.backends.slurm_format import (
    NOT_FOUND_MARKER,
    TIME_LIMIT_MARGIN_S,
    array_child,
    array_key,
    array_name,
    array_output,
    array_script,
    batch_script,
    epoch_ms,
    exit_code_of,
    expand_job_ids,
    first_line,
    index_ranges,
    sbatch_message,
    slurm_path,
    time_limit_minutes,
    usage_from_sacct,
)

log = logging.getLogger("genobatch.backends.slurm")

PARTITION_TAG = "genobatch:slurm-partition"
ACCOUNT_TAG = "genobatch:slurm-account"
QOS_TAG = "genobatch:slurm-qos"
OPTIONS_TAG = "genobatch:slurm-options"

NOT_FOUND_REASON = "CannotStartContainerError: executable file not found in $PATH"
COMMAND_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 1.0
#: From this many tracked attempts on, states are read half as often (see ``states``).
MANY_JOBS = 200
#: An ended job's accounting record reaches slurmdbd a moment after squeue shows the end; wait
#: this many seconds for it (usage) before reporting the end without usage.
USAGE_WAIT_S = 10.0
#: How far back ``sacct`` looks for a job by name (default: only since midnight).
FIND_SINCE = "now-30days"
#: Most job ids (or names) in one command line (one argument is at most 128 KiB on Linux).
IDS_PER_CALL = 8000
NAMES_PER_CALL = 1500

#: The options this module sets itself; ``genobatch:slurm-options`` may not repeat them.
OWN_OPTIONS = re.compile(
    r"job-name|output|error|open-mode|chdir|cpus-per-task|mem|mem-per-cpu|mem-per-gpu|gres|gpus|time|partition"
    r"|account|qos|parsable|wrap|array|export|export-file|nodes|ntasks|get-user-env"
)
_NAME_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_OPTION_WORD = re.compile(r"--([a-z][a-z0-9-]*)(=.*)?", re.DOTALL)

# squeue's fields, pipe-separated (the name comes last: it is the only free-form one).
_SQUEUE_FORMAT = (
    "JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,StartTime:|,EndTime:|,NodeList:|,Reason:|,STDOUT:|,Name:"
)
_FIND_FORMAT = "JobID:|,ArrayJobID:|,ArrayTaskID:|,Name:"
_SACCT_FIELDS = "JobID,State,ExitCode,Start,End,ElapsedRaw,TotalCPU,UserCPU,SystemCPU,MaxRSS,MaxVMSize,NodeList,WorkDir"
_QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING", "SUSPENDED"}
#: Ends that are the cluster's doing, not the job's: no exit code.
_ENDED_BY_SLURM = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED"}
_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "SPECIAL_EXIT"} | _ENDED_BY_SLURM
#: Pending reasons that never resolve by waiting: the job can never run as specified.
_NEVER_RUNS = {"BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit", "InvalidQOS", "InvalidAccount"}
#: sbatch refusals that are the job's resources (final for the job), not the configuration's.
_RESOURCE_REFUSALS = re.compile(
    r"memory specification|requested node configuration is not available|more processors requested"
    r"|gres|cpu count|node count specification|memory required by task is not available"
    r"|job violates accounting/qos policy|exceeds.*limit",
    re.IGNORECASE,
)
#: Answers that mean the controller (or its database) was not reached.
_UNREACHABLE = re.compile(
    r"unable to contact slurm controller|socket timed out|connection refused|zero bytes were transmitted"
    r"|communication connection failure|protocol authentication error|munge|slurm_persist_conn_open"
    r"|could not establish a configuration source|slurm_load_|unable to establish",
    re.IGNORECASE,
)
#: A submission whose answer may have been lost after slurmctld accepted it.
_MAYBE_SENT = re.compile(r"socket timed out|zero bytes were transmitted", re.IGNORECASE)


def engine_from_tags(compute_environment: str, tags: Mapping[str, str]) -> SlurmEngine:
    """The engine a compute environment's tags describe; ``ValueError`` naming the bad tag.

    Makes no call to Slurm (the API calls it to validate a new compute environment).
    """
    partition = (tags.get(PARTITION_TAG) or "").strip()
    if not partition:
        raise ValueError(f"{PARTITION_TAG} is required for genobatch:backend slurm (the Slurm partition to run in)")
    words = {}
    for tag, value in ((PARTITION_TAG, partition), (ACCOUNT_TAG, tags.get(ACCOUNT_TAG)), (QOS_TAG, tags.get(QOS_TAG))):
        value = (value or "").strip()
        if value and not _NAME_WORD.fullmatch(value):
            raise ValueError(f"{tag}: {value[:80]!r} is not a Slurm name (1-64 letters, digits, _ . + -)")
        words[tag] = value or None
    return SlurmEngine(
        compute_environment,
        partition,
        account=words[ACCOUNT_TAG],
        qos=words[QOS_TAG],
        options=parse_options(tags.get(OPTIONS_TAG) or ""),
    )


def parse_options(text: str) -> tuple[str, ...]:
    """``genobatch:slurm-options`` as sbatch words; ``ValueError`` naming the tag and the bad word.

    Each word is ``--name=value`` or ``--flag`` (shell quoting allowed), so that every word
    can be checked on its own; options genobatch sets itself are refused.
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"{OPTIONS_TAG}: cannot be split into words: {exc}") from None
    for word in words:
        match = _OPTION_WORD.fullmatch(word)
        if match is None:
            raise ValueError(f"{OPTIONS_TAG}: {word[:60]!r} is not a long sbatch option; write --name=value or --flag")
        if OWN_OPTIONS.fullmatch(match[1]):
            raise ValueError(f"{OPTIONS_TAG}: --{match[1]} is set by genobatch from the job and cannot be given here")
    return tuple(words)


class SlurmEngine(RemoteEngine):
    """Runs attempts as Slurm batch jobs (see the module docstring)."""

    kind = "slurm"
    poll_interval_s = POLL_INTERVAL_S
    batch_size = 500

    def __init__(
        self,
        compute_environment: str,
        partition: str,
        *,
        account: str | None = None,
        qos: str | None = None,
        options: Sequence[str] = (),
        submit_workers: int = 4,
        arrays: bool = True,
        time_limit_margin_s: int = TIME_LIMIT_MARGIN_S,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> None:
        self.compute_environment = compute_environment
        self.partition = partition
        self.account = account
        self.qos = qos
        self.options = tuple(options)
        self.where = f"Slurm partition {partition}"
        self.arrays = arrays
        self._workers = submit_workers
        self._margin_s = time_limit_margin_s
        self._timeout_s = command_timeout_s
        self.accounting: bool | None = None  # whether sacct answers; learnt by probe()
        self.max_array_index = -1  # MaxArraySize - 1; learnt by probe()
        self._ended_since: dict[str, float] = {}  # handle -> when squeue first showed it ended
        self.calls: dict[str, int] = {}  # Slurm commands run, by name: for tests and benchmarks

    # --------------------------------------------------------------- commands
    def _environment(self, *, for_job: bool = False) -> dict[str, str]:
        """A clean environment for Slurm's commands: the server's basics and its Slurm location.

        For reading commands, times are printed as epoch seconds (``SLURM_TIME_FORMAT``).
        """
        env = inherited_environment()
        for name in ("SLURM_CONF", "SLURM_CLUSTERS"):
            if name in os.environ:
                env[name] = os.environ[name]
        if not for_job:
            env["SLURM_TIME_FORMAT"] = "%s"
        return env

    def _run(self, args: list[str], *, stdin: str | None = None, for_job: bool = False) -> subprocess.CompletedProcess:
        """Run one Slurm command. Raises :class:`RemoteUnavailable` when it is missing or hangs."""
        self.calls[args[0]] = self.calls.get(args[0], 0) + 1
        try:
            return subprocess.run(
                args,
                input=stdin,
                capture_output=True,
                text=True,
                env=self._environment(for_job=for_job),
                timeout=self._timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise RemoteUnavailable(f"{self.where}: {args[0]} is not installed on this server's PATH") from None
        except subprocess.TimeoutExpired:
            raise RemoteUnavailable(f"{self.where}: {args[0]} did not answer in {self._timeout_s:.0f} s") from None

    def _read(self, args: list[str], doing: str) -> str:
        """A read-only command; a failure means the cluster is unavailable."""
        done = self._run(args)
        if done.returncode != 0:
            raise RemoteUnavailable(f"{self.where}: {doing} failed: {first_line(done.stderr) or done.returncode}")
        return done.stdout

    # --------------------------------------------------------------- probe
    def probe(self) -> None:
        """The partition exists and is up; learn whether the cluster keeps accounting (sacct)."""
        out = self._read(["sinfo", "-h", "-p", self.partition, "-o", "%P|%a"], "sinfo")
        rows = [line.split("|") for line in out.splitlines() if "|" in line]
        if not rows:
            raise RemoteUnavailable(f"{self.where}: the cluster has no partition {self.partition!r}")
        if rows[0][1].strip() != "up":
            raise RemoteUnavailable(f"{self.where}: the partition is {rows[0][1].strip()}")
        config = self._read(["scontrol", "show", "config"], "scontrol show config")
        storage = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config, re.MULTILINE)
        self.accounting = bool(storage) and not storage[1].endswith("/none")
        size = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
        self.max_array_index = int(size[1]) - 1 if size else -1

    # --------------------------------------------------------------- submit
    def sbatch_args(
        self, spec: AttemptSpec, *, name: str | None = None, output: str | None = None, chdir: str | None = None
    ) -> list[str]:
        """The sbatch command line of one attempt (the script goes on stdin); an array overrides
        the name, the output pattern and the directory."""
        args = [
            "sbatch",
            "--parsable",
            f"--job-name={name or spec.name}",
            f"--partition={self.partition}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={max(1, spec.vcpus)}",
            f"--mem={max(1, spec.memory_mib)}M",
            f"--output={output or slurm_path(os.path.join(spec.attempt_dir, LOG_FILE))}",
            "--open-mode=append",
            f"--chdir={chdir or os.path.join(spec.attempt_dir, 'work')}",
        ]
        if self.account:
            args.append(f"--account={self.account}")
        if self.qos:
            args.append(f"--qos={self.qos}")
        if spec.gpu_count:
            args.append(f"--gres=gpu:{spec.gpu_count}")
        if spec.timeout_s:
            args.append(f"--time={time_limit_minutes(spec.timeout_s, self._margin_s)}")
        args.extend(self.options)
        return args

    def submit(self, specs: Sequence[AttemptSpec]) -> list[SubmitResult]:
        """Siblings go out as job arrays, the rest one sbatch each; a few sbatch calls at a time."""
        if self.accounting is None:
            self.probe()
        units: list[list[int]] = []
        siblings: dict[tuple, list[int]] = {}
        for position, spec in enumerate(specs):
            key = array_key(spec) if self.arrays and spec.command else None
            if key is None or array_child(spec)[1] > self.max_array_index:
                units.append([position])
            else:
                siblings.setdefault(key, []).append(position)
        units.extend(siblings.values())
        results: list[SubmitResult | None] = [None] * len(specs)

        def submit_unit(unit: list[int]) -> None:
            chosen = [specs[position] for position in unit]
            answers = self._submit_array(chosen) if len(chosen) > 1 else [self._submit_one(chosen[0])]
            for position, answer in zip(unit, answers, strict=True):
                results[position] = answer

        with ThreadPoolExecutor(max_workers=min(self._workers, max(1, len(units)))) as pool:
            list(pool.map(submit_unit, units))
        if all(result is None for result in results):
            raise RemoteUnavailable(f"{self.where}: the Slurm controller cannot be reached to submit")
        return [result or Uncertain("not sent: the Slurm controller could not be reached") for result in results]

    def _sbatch(self, args: list[str], script: str, what: str) -> tuple[str | None, SubmitResult | None]:
        """(job id, None) when sbatch accepted; (None, why not) otherwise, None meaning not sent."""
        try:
            done = self._run(args, stdin=script, for_job=True)
        except RemoteUnavailable as problem:
            return None, Uncertain(f"sbatch {what}: {problem}") if "did not answer" in str(problem) else None
        if done.returncode == 0:
            job_id = done.stdout.strip().split(";")[0]
            if job_id.isdigit():
                return job_id, None
            return None, Uncertain(f"sbatch {what}: unexpected answer {done.stdout.strip()[:80]!r}")
        message = sbatch_message(done.stderr)
        if _MAYBE_SENT.search(done.stderr):
            return None, Uncertain(f"sbatch {what}: {message}")
        if _UNREACHABLE.search(done.stderr) or "invalid partition" in done.stderr.lower():
            log.warning("%s: sbatch %s not accepted: %s", self.where, what, message)
            return None, None
        misconfiguration = bool(_RESOURCE_REFUSALS.search(done.stderr))
        return None, Refused(f"Slurm refused the job: {message}", misconfiguration=misconfiguration)

    def _submit_one(self, spec: AttemptSpec) -> SubmitResult | None:
        """One sbatch; None when nothing was sent (the controller or the partition is unavailable)."""
        if not spec.command:
            return Refused("CannotStartContainerError: the job has no command")
        try:
            os.makedirs(os.path.join(spec.attempt_dir, "work"), exist_ok=True)
        except OSError as exc:
            return Refused(f"cannot create the attempt's directory on the shared disk: {exc}")
        job_id, problem = self._sbatch(self.sbatch_args(spec), batch_script(spec), spec.name)
        if job_id is None:
            return problem
        return Submitted(job_id, {"slurm_job_id": job_id, "slurm_partition": self.partition})

    def _submit_array(self, specs: list[AttemptSpec]) -> list[SubmitResult | None]:
        """Siblings as one Slurm job array; single jobs where the array is refused as an array."""
        try:
            for spec in specs:
                os.makedirs(os.path.join(spec.attempt_dir, "work"), exist_ok=True)
        except OSError:
            return [self._submit_one(spec) for spec in specs]  # each says what is wrong with it
        parent, _ = array_child(specs[0])
        indices = [array_child(spec)[1] for spec in specs]
        jobs_dir = os.path.dirname(os.path.dirname(specs[0].attempt_dir.rstrip("/")))
        args = self.sbatch_args(
            specs[0], name=array_name(parent, specs[0].attempt), output=array_output(specs[0]), chdir=jobs_dir
        )
        args.append(f"--array={index_ranges(indices)}")
        job_id, problem = self._sbatch(args, array_script(specs), f"array of {len(specs)} children of {parent}")
        if job_id is not None:
            info = {"slurm_array_job_id": job_id, "slurm_partition": self.partition}
            return [Submitted(f"{job_id}_{index}", {**info, "slurm_job_id": f"{job_id}_{index}"}) for index in indices]
        if isinstance(problem, Refused) and not problem.misconfiguration and "array" in problem.message.lower():
            log.info("%s: %s; submitting the children one by one", self.where, problem.message)
            return [self._submit_one(spec) for spec in specs]
        return [problem] * len(specs)

    # --------------------------------------------------------------- states
    def states(self, handles: Sequence[str]) -> dict[str, RemoteState]:
        """One ``squeue`` for all handles; one ``sacct`` for those that ended or were forgotten."""
        # Each poll costs the host ~0.1 s of CPU for squeue/sacct with thousands of jobs, and
        # slurmctld as much again: poll every 2 s once many are tracked (they end no sooner for it).
        self.poll_interval_s = POLL_INTERVAL_S if len(handles) < MANY_JOBS else 2 * POLL_INTERVAL_S
        found: dict[str, RemoteState] = {}
        ended: dict[str, RemoteState] = {}
        never_runs: list[str] = []
        wanted = set(handles)
        for first in range(0, len(handles), IDS_PER_CALL):
            chunk = handles[first : first + IDS_PER_CALL]
            args = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(chunk), "-O", _SQUEUE_FORMAT]
            done = self._run(args)
            # A single id squeue no longer knows is an error; among several it is left out.
            if done.returncode != 0 and "invalid job id" not in done.stderr.lower():
                raise RemoteUnavailable(f"{self.where}: squeue (job states) failed: {first_line(done.stderr)}")
            for line in done.stdout.splitlines():
                state = self._squeue_state(line)
                if state is None or state.handle not in wanted:
                    continue
                if state.final:
                    never_runs.append(state.handle)
                    found[state.handle] = state
                elif state.phase == "ended":
                    ended[state.handle] = state
                else:
                    found[state.handle] = state
        if never_runs:
            self.cancel(never_runs)
        if not self.accounting:
            found.update(ended)
            return found
        forgotten = [h for h in handles if h not in found and h not in ended]
        accounted = self._accounted(list(ended) + forgotten)
        now = time.monotonic()
        for handle, state in ended.items():
            if handle in accounted:  # squeue's view of the end, sacct's usage
                found[handle] = dataclasses.replace(state, usage=accounted[handle].usage)
                self._ended_since.pop(handle, None)
            elif state.started_at_ms is None or now - self._ended_since.setdefault(handle, now) >= USAGE_WAIT_S:
                found[handle] = state  # no record in time: the end without usage
                self._ended_since.pop(handle, None)
            else:
                found[handle] = RemoteState(handle, "running", started_at_ms=state.started_at_ms, info=state.info)
        for handle in forgotten:
            if handle in accounted:
                found[handle] = accounted[handle]
        return found

    def _squeue_state(self, line: str) -> RemoteState | None:
        fields = line.split("|", 10)
        if len(fields) != 11:
            return None
        job_id, array_job, task, state, exit_status, start, end, node, reason, stdout, _ = (f.strip() for f in fields)
        handle = _handle(job_id, array_job, task)
        info = {"slurm_node": node} if node and node != "(null)" else {}
        started = epoch_ms(start) if info else None  # a job cancelled while queued has a start time too
        if state in _QUEUED:
            if reason in _NEVER_RUNS:
                message = f"MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - Slurm holds the job pending: {reason}"
                return RemoteState(handle, "ended", reason=message, status_reason=message, final=True, info=info)
            return RemoteState(handle, "queued", info=info)
        if state not in _ENDED:  # RUNNING, COMPLETING, SIGNALING, STAGE_OUT, ...
            return RemoteState(handle, "running", started_at_ms=started or _now_ms(), info=info)
        status = int(exit_status) if exit_status.isdigit() else None
        if "_" in handle:  # an array task: squeue prints the --output pattern
            stdout = re.sub(r"%(%|a)", lambda m: handle.split("_")[1] if m[1] == "a" else "%", stdout)
        attempt_dir = os.path.dirname(stdout) if stdout.endswith("/" + LOG_FILE) else ""
        return self._ended(handle, state, status, started, epoch_ms(end), attempt_dir, {}, info)

    def _ended(
        self,
        handle: str,
        state: str,
        wait_status: int | None,
        started: int | None,
        stopped: int | None,
        attempt_dir: str,
        usage: dict,
        info: dict,
    ) -> RemoteState:
        """The RemoteState of an ended job, however Slurm worded its end."""
        exit_code = exit_code_of(wait_status) if wait_status is not None and started else None
        reason = status_reason = None
        timed_out = False
        if state == "OUT_OF_MEMORY":
            reason = OOM_REASON
            exit_code = exit_code if exit_code not in (None, 0, 128 + 125) else 137
        elif state == "TIMEOUT":
            timed_out = True
        elif state in _ENDED_BY_SLURM:
            exit_code = None
            where = f" on {info['slurm_node']}" if "slurm_node" in info else ""
            status_reason = f"Slurm ended the job: {state}{where}"
        if attempt_dir and os.path.exists(os.path.join(attempt_dir, NOT_FOUND_MARKER)):
            exit_code, reason, status_reason = None, NOT_FOUND_REASON, FAILED_TO_START
        if not started and status_reason is None and reason is None:
            status_reason = FAILED_TO_START if state != "CANCELLED" else "Task stopped before it started"
        return RemoteState(
            handle,
            "ended",
            started_at_ms=started,
            stopped_at_ms=stopped,
            exit_code=exit_code,
            reason=reason,
            status_reason=status_reason,
            timed_out=timed_out,
            usage=usage,
            info={**info, "slurm_state": state},
        )

    def _accounted(self, handles: list[str]) -> dict[str, RemoteState]:
        """Ended jobs as sacct records them, with usage; jobs without a final record are left out.

        A failing sacct (slurmdbd down) only costs the usage: it is logged, not raised.
        """
        if not handles:
            return {}
        rows: dict[str, dict[str, str]] = {}
        names = _SACCT_FIELDS.split(",")
        for first in range(0, len(handles), IDS_PER_CALL):
            chunk = handles[first : first + IDS_PER_CALL]
            done = self._run(["sacct", "-n", "-P", "-j", ",".join(chunk), "-o", _SACCT_FIELDS])
            if done.returncode != 0:
                log.warning("%s: sacct failed (usage unavailable): %s", self.where, first_line(done.stderr))
                return {}
            for line in done.stdout.splitlines():
                values = line.split("|")
                if len(values) == len(names):
                    rows[values[0]] = dict(zip(names, values, strict=True))
        found: dict[str, RemoteState] = {}
        for handle in handles:
            job, step = rows.get(handle), rows.get(f"{handle}.batch")
            if job is None or job["State"].split()[0] not in _ENDED:  # "CANCELLED by 0"
                continue
            info = {"slurm_node": job["NodeList"]} if job["NodeList"] not in ("", "None assigned") else {}
            started, stopped = epoch_ms(job["Start"]) if info else None, epoch_ms(job["End"])
            if started and (step is None or not step["MaxRSS"]):
                continue  # the batch step's record (with the memory peak) has not arrived yet
            code, _, signal = job["ExitCode"].partition(":")
            wait_status = (int(code) << 8 | int(signal)) if code.isdigit() and signal.isdigit() else None
            # WorkDir is the attempt's work directory for single jobs (arrays share one; no marker check).
            attempt_dir = os.path.dirname(job["WorkDir"]) if job["WorkDir"].endswith("/work") else ""
            usage = usage_from_sacct(job, step)
            found[handle] = self._ended(
                handle, job["State"].split()[0], wait_status, started, stopped, attempt_dir, usage, info
            )
        return found

    # --------------------------------------------------------------- find
    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Job ids of the attempts with these names: squeue, then sacct for jobs it forgot.

        An array child is found through its array's name (``<parent>_array_<attempt>``) and its
        task index.
        """
        wanted = set(names)
        # Where a child's task would be: array name -> (child name stem, attempt).
        arrays: dict[str, tuple[str, str]] = {}
        for name in wanted:
            stem, index, attempt = (name.rsplit("_", 2) + ["", ""])[:3]
            if index.isdigit() and attempt.isdigit():
                arrays[f"{stem}_array_{attempt}"] = (stem, attempt)

        found: dict[str, str] = {}

        def add(rows: str) -> None:
            for row in rows.splitlines():
                *ids, name = row.split("|")
                name = name.strip()
                # squeue: raw id, array job id, task id; sacct: "12", "12_3" or "12_[4-6]".
                for one in expand_job_ids(_handle(*ids) if len(ids) == 3 else ids[0]):
                    child = name
                    if name in arrays and "_" in one:
                        stem, attempt = arrays[name]
                        child = f"{stem}_{one.split('_')[1]}_{attempt}"
                    if child in wanted and (child not in found or _id_key(one) < _id_key(found[child])):
                        found[child] = one

        lookup = sorted(wanted | set(arrays))
        for first in range(0, len(lookup), NAMES_PER_CALL):
            chunk = ",".join(lookup[first : first + NAMES_PER_CALL])
            args = ["squeue", "-h", "-r", "-t", "all", f"--name={chunk}", "-O", _FIND_FORMAT]
            add(self._read(args, "squeue --name"))
        if self.accounting is None:
            self.probe()
        if self.accounting and len(found) < len(wanted):
            for first in range(0, len(lookup), NAMES_PER_CALL):
                chunk = ",".join(lookup[first : first + NAMES_PER_CALL])
                args = ["sacct", "-n", "-P", "-X", "-S", "now-30days", "-E", "now", f"--name={chunk}"]
                done = self._run([*args, "-o", "JobID,JobName"])
                if done.returncode != 0:  # without the database, a lost job may be submitted twice
                    raise RemoteUnavailable(f"{self.where}: sacct (find by name) failed: {first_line(done.stderr)}")
                add(done.stdout)
        return found

    # --------------------------------------------------------------- stops
    def signal(self, handles: Sequence[str]) -> None:
        """Queued jobs are removed; running ones get SIGTERM in their main process."""
        self._scancel(["--state=PENDING", *handles])
        self._scancel(["--batch", "--signal=TERM", "--state=RUNNING", *handles])

    def cancel(self, handles: Sequence[str]) -> None:
        """SIGKILL to the running jobs' main process (the job ends, and Slurm kills what is left of
        it at once); queued ones are removed. Not a plain ``scancel`` of a running job, nor
        ``--full --signal=KILL``: Slurm turns both into its graceful kill (SIGTERM, then SIGKILL
        after KillWait), which here would keep the node COMPLETING for 30 s."""
        self._scancel(["--batch", "--signal=KILL", "--state=RUNNING", *handles])
        self._scancel(["--state=PENDING", *handles])

    def _scancel(self, args: list[str]) -> None:
        done = self._run(["scancel", *args])
        # A job that already ended answers "Invalid job id" or "already completing": nothing to do.
        if done.returncode != 0 and _UNREACHABLE.search(done.stderr):
            raise RemoteUnavailable(f"{self.where}: scancel failed: {first_line(done.stderr)}")


def _handle(job_id: str, array_job: str, task: str) -> str:
    """An attempt's handle from squeue's fields: ``<array job id>_<index>`` for array tasks."""
    job_id, array_job, task = job_id.strip(), array_job.strip(), task.strip()
    return f"{array_job}_{task}" if task.isdigit() else job_id


def _id_key(job_id: str) -> tuple[int, ...]:
    """Job ids in submission order: ``12`` < ``12_3`` < ``13``."""
    return tuple(int(part) for part in job_id.split("_"))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
