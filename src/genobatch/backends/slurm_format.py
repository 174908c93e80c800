"""What the Slurm engine writes for Slurm and reads back from it: batch scripts, job arrays, fields.

Kept apart from :mod:`genobatch.backends.slurm` (which runs the commands) so that both stay short:
everything here is a pure function of its arguments.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Sequence

from genobatch.backends.base import AttemptSpec
from genobatch.backends.host import LOG_FILE

#: genobatch's own timer sends SIGTERM at the timeout and SIGKILL 30 s later; Slurm's limit only
#: catches what that misses (a server that is down), so it lies beyond both.
KILL_GRACE_S = 30
TIME_LIMIT_MARGIN_S = 60
NOT_FOUND_MARKER = "slurm_not_found"
_CHECK = (
    'command -v -- "$1" >/dev/null 2>&1 || '
    '{ echo "genobatch: executable file not found: $1" >&2; : > "$0"; exit 127; }; exec "$@"'
)


def time_limit_minutes(timeout_s: int, margin_s: int = TIME_LIMIT_MARGIN_S) -> int:
    """Slurm's ``--time`` (whole minutes) for an attempt timeout: beyond its SIGKILL and a margin."""
    return max(1, math.ceil((timeout_s + KILL_GRACE_S + margin_s) / 60))


def slurm_path(path: str) -> str:
    """A path for ``--output``, where Slurm replaces ``%`` patterns: a literal ``%`` is ``%%``."""
    return path.replace("%", "%%")


def _exec_line(spec: AttemptSpec) -> str:
    """``exec env VAR=... sh -c CHECK MARKER COMMAND...``: the attempt's environment and command.

    ``env`` sets the variables (any name a job may carry, not only shell identifiers) and a
    shell looks the executable up on the job's own PATH first, so a missing one leaves the
    marker instead of being indistinguishable from a command that exits 127.
    """
    environment = dict(spec.environment)
    if not spec.gpu_count:
        # As on the local backend: no GPU visible to a job that asked for none.
        environment.update(CUDA_VISIBLE_DEVICES="", NVIDIA_VISIBLE_DEVICES="void")
    assignments = " ".join(shlex.quote(f"{name}={value}") for name, value in sorted(environment.items()))
    marker = os.path.join(spec.attempt_dir, NOT_FOUND_MARKER)
    command = " ".join(shlex.quote(word) for word in spec.command)
    return f"exec env {assignments} /bin/sh -c {shlex.quote(_CHECK)} {shlex.quote(marker)} {command}"


def batch_script(spec: AttemptSpec) -> str:
    """The batch script of one attempt (sbatch's ``--chdir`` puts it in ``attempt_dir/work``)."""
    return f"#!/bin/sh\n# genobatch job {spec.job_id} attempt {spec.attempt}\n{_exec_line(spec)}\n"


# ----------------------------------------------------------------------------- job arrays
def array_child(spec: AttemptSpec) -> tuple[str, int] | None:
    """(parent job id, index) of an array child whose attempt directory follows the pattern
    ``<jobs>/<parent>:<index>/<attempt>``, so that one ``--output`` pattern (``%a``) serves
    every task of a Slurm job array; None for any other attempt."""
    parent, sep, index = spec.job_id.rpartition(":")
    if not sep or not index.isdigit():
        return None
    job_dir, attempt = os.path.split(spec.attempt_dir.rstrip("/"))
    if attempt != str(spec.attempt) or os.path.basename(job_dir) != spec.job_id:
        return None
    return parent, int(index)


def array_key(spec: AttemptSpec) -> tuple | None:
    """Siblings with equal keys can go out as one Slurm job array (same parent, attempt, resources)."""
    child = array_child(spec)
    if child is None:
        return None
    jobs_dir = os.path.dirname(os.path.dirname(spec.attempt_dir.rstrip("/")))
    return (child[0], spec.attempt, jobs_dir, spec.vcpus, spec.memory_mib, spec.gpu_count, spec.timeout_s)


def array_name(parent: str, attempt: int) -> str:
    """The Slurm job name of a job array of ``parent``'s children (their attempt ``attempt``)."""
    return f"gb_{parent.replace(':', '_')}_array_{attempt}"


def array_output(spec: AttemptSpec) -> str:
    """``--output`` for all tasks of the array: the child's log path with its index as ``%a``."""
    parent, _ = array_child(spec) or ("", 0)
    jobs_dir = os.path.dirname(os.path.dirname(spec.attempt_dir.rstrip("/")))
    return os.path.join(slurm_path(jobs_dir), f"{slurm_path(parent)}:%a", str(spec.attempt), LOG_FILE)


def array_script(specs: Sequence[AttemptSpec]) -> str:
    """One batch script for sibling attempts: each array task runs its own child's line."""
    lines = ["#!/bin/sh", f"# genobatch array children of {array_child(specs[0])[0]}", 'case "$SLURM_ARRAY_TASK_ID" in']
    for spec in specs:
        _, index = array_child(spec)
        work = shlex.quote(os.path.join(spec.attempt_dir, "work"))
        lines.append(f"{index}) cd {work} || exit 1; {_exec_line(spec)} ;;")
    lines += ["esac", 'echo "genobatch: array task $SLURM_ARRAY_TASK_ID has no attempt" >&2', "exit 1", ""]
    return "\n".join(lines)


def index_ranges(indices: Sequence[int]) -> str:
    """``--array`` words for indices: ``0-9,12,15-20``."""
    ordered = sorted(set(indices))
    words, start = [], None
    for position, index in enumerate(ordered):
        if start is None:
            start = index
        if position + 1 == len(ordered) or ordered[position + 1] != index + 1:
            words.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ",".join(words)


def expand_job_ids(text: str) -> list[str]:
    """Slurm's job ids as printed, one per task: ``12``, ``12_3``, ``12_[4-6,9]`` (pending tasks)."""
    text = text.strip()
    found = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", text)
    if found is None:
        return [text] if re.fullmatch(r"\d+(_\d+)?", text) else []
    ids = []
    for word in found[2].split(","):
        low, _, high = word.partition("-")
        ids += [f"{found[1]}_{i}" for i in range(int(low), int(high or low) + 1)]
    return ids


# ----------------------------------------------------------------------------- fields
def exit_code_of(wait_status: int) -> int:
    """A raw wait status as a container's exit code: the code, or 128 + the killing signal."""
    signal = wait_status & 0x7F
    return 128 + signal if signal else (wait_status >> 8) & 0xFF


def epoch_ms(text: str) -> int | None:
    """A time printed with ``SLURM_TIME_FORMAT=%s`` (epoch seconds); None for N/A, Unknown, 0."""
    text = text.strip()
    return int(text) * 1000 if text.isdigit() and int(text) > 0 else None


def duration_ms(text: str) -> int | None:
    """sacct's ``[DD-[HH:]]MM:SS[.mmm]`` as milliseconds."""
    text = text.strip()
    if not text:
        return None
    days, _, rest = text.rpartition("-")
    parts = rest.split(":")
    try:
        seconds = float(parts[-1])
        minutes = int(parts[-2]) if len(parts) >= 2 else 0
        hours = int(parts[-3]) if len(parts) >= 3 else 0
        total = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    except ValueError:
        return None
    return round(total * 1000)


def to_bytes(text: str) -> int | None:
    """sacct's memory figures (``211820K``, ``1.5G``, plain bytes) as bytes."""
    match = re.fullmatch(r"([\d.]+)([KMGTP]?)", text.strip())
    if match is None:
        return None
    return round(float(match[1]) * 1024 ** "_KMGTP".index(match[2] or "_"))


def usage_from_sacct(job: dict[str, str], step: dict[str, str] | None) -> dict:
    """sacct's figures as the trace's usage keys (see :func:`genobatch.backends.usage.build_usage`):
    CPU times of the job, memory peaks of its batch step, elapsed time."""
    usage: dict = {}
    if job["NodeList"] and job["NodeList"] != "None assigned":
        usage["hostname"] = job["NodeList"]
    for key, field in (("cpu_time_ms", "TotalCPU"), ("cpu_user_ms", "UserCPU"), ("cpu_sys_ms", "SystemCPU")):
        value = duration_ms(job[field])
        if value is not None:
            usage[key] = value
    if step is not None:
        for key, field in (("peak_rss", "MaxRSS"), ("peak_vmem", "MaxVMSize")):
            value = to_bytes(step[field])
            if value:
                usage[key] = value
    if job["ElapsedRaw"].isdigit():
        usage["realtime_ms"] = int(job["ElapsedRaw"]) * 1000
        if usage["realtime_ms"] > 0 and "cpu_time_ms" in usage:
            usage["pct_cpu"] = round(usage["cpu_time_ms"] / usage["realtime_ms"] * 100.0, 1)
    return usage


def first_line(text: str) -> str:
    """The first non-blank line of a command's output."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def sbatch_message(stderr: str) -> str:
    """sbatch's refusal, its most specific line first (``Memory specification can not be satisfied``
    comes before the generic ``Batch job submission failed: ...``)."""
    lines = [re.sub(r"^sbatch: error: ", "", line.strip()) for line in stderr.splitlines() if line.strip()]
    return "; ".join(lines)[:500] or "no message"
