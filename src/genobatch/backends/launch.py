"""What an attempt is launched with: its environment, its user, and its ``attempt.json``.

Kept apart from the backend's threads so that a different launcher (issue 9's persistent one)
can start attempts with exactly the same environment, identity and record.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass

from genobatch.backends.base import AttemptSpec
from genobatch.backends.host import LOG_FILE, MARKER_ENV

SPEC_FILE = "attempt.json"
# What a job inherits from the server's environment; everything else comes from its spec.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR")
GPU_ENV = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")


LAUNCHERS = ("wrapper", "persistent")
LAUNCHER_ENV = "GENOBATCH_LAUNCHER"


def launcher_setting(value: str | None) -> str:
    """The launcher to use: ``value``, else ``$GENOBATCH_LAUNCHER``, else ``wrapper``.

    ValueError names the setting and the allowed values when it is neither.
    """
    chosen = value or os.environ.get(LAUNCHER_ENV) or "wrapper"
    if chosen not in LAUNCHERS:
        raise ValueError(f"launcher {chosen!r} is not one of {', '.join(LAUNCHERS)}")
    return chosen


def default_launcher_dir(group: str) -> str:
    """Where a backend without a data directory finds its persistent launcher: one per user and
    cgroup group, so that a second backend of the same group (a restart) finds the first's."""
    return os.path.join(tempfile.gettempdir(), f"genobatch-launcher-{os.getuid()}-{group}")


@dataclass(frozen=True, slots=True)
class JobUser:
    """The account jobs' commands run as (``--job-user``)."""

    name: str
    uid: int
    gid: int
    home: str

    @property
    def runas(self) -> str:
        """The wrapper's RUNAS argument."""
        return f"{self.uid}:{self.gid}"


def resolve_job_user(name: str) -> JobUser:
    """Look the user up; ValueError names what is wrong (unknown user, not root, no setpriv)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ValueError(f"job user {name!r} does not exist on this host") from None
    if os.geteuid() != 0:
        raise ValueError(f"job user {name!r}: the server must run as root to start jobs as another user")
    if shutil.which("setpriv") is None:
        raise ValueError(f"job user {name!r}: setpriv (util-linux) is not on the PATH")
    return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def inherited_environment() -> dict[str, str]:
    """The few variables of the server's own environment that every job gets."""
    return {k: v for k, v in os.environ.items() if k in INHERITED_ENV or k.startswith("LC_")}


def job_environment(
    spec: AttemptSpec, attempt_dir: str, base: dict[str, str], user: JobUser | None
) -> tuple[dict[str, str], set[str]]:
    """The job's environment, and the keys a container must receive (not the host basics)."""
    batch = {"AWS_BATCH_JOB_ID": spec.job_id, "AWS_BATCH_JOB_ATTEMPT": str(spec.attempt)}
    if spec.compute_environment:
        batch["AWS_BATCH_CE_NAME"] = spec.compute_environment
    base = dict(base)
    if user is not None:
        base.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
    env = {**base, **batch, **spec.environment, MARKER_ENV: attempt_dir}
    # GPU pinning overrides the job's own settings: a job must not reach GPUs it was not given.
    if spec.gpus:
        devices = ",".join(map(str, spec.gpus))
        env.update(CUDA_VISIBLE_DEVICES=devices, NVIDIA_VISIBLE_DEVICES=devices)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # so CUDA numbers GPUs like NVML does
    else:
        # Empty hides every device from CUDA; "void" keeps the NVIDIA container hook out.
        env.update(CUDA_VISIBLE_DEVICES="", NVIDIA_VISIBLE_DEVICES="void")
    keys = set(batch) | set(spec.environment) | {MARKER_ENV}
    if spec.gpus:
        keys -= set(GPU_ENV)  # the runtime maps the devices; host indices are wrong inside
    else:
        keys |= {"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"}  # override image defaults
    return env, keys


def hand_over(attempt_dir: str, work: str, user: JobUser) -> None:
    """Give the job user its working directory and its log (tools reopen /dev/stdout); the
    control files (pids, exit status, stop) stay the server's."""
    log_path = os.path.join(attempt_dir, LOG_FILE)
    with open(log_path, "ab"):
        pass
    for path in (work, log_path):
        os.chown(path, user.uid, user.gid)


def attempt_meta(spec: AttemptSpec, attempt_dir: str, argv: list[str], fields: dict) -> dict:
    """The content of ``attempt.json``: the spec's resources and command (``argv`` as run, e.g.
    through a container runtime), plus the backend's ``fields`` (runtime, containment, ...)."""
    return {
        "job_id": spec.job_id,
        "attempt": spec.attempt,
        "command": list(spec.command),
        "argv": argv,
        "environment_keys": sorted(spec.environment),
        "attempt_dir": attempt_dir,
        "vcpus": spec.vcpus,
        "memory_mib": spec.memory_mib,
        "cpus": list(spec.cpus),
        "gpus": list(spec.gpus),
        "image": spec.image,
        "compute_environment": spec.compute_environment,
        **fields,
    }


def write_attempt_file(attempt_dir: str, meta: dict) -> None:
    """Write ``attempt.json`` (for humans and reconcile; variable values are left out).

    Written in place (no tmp + rename: that costs a journal commit per job); a torn file only
    loses what reconcile reads from it (the memory limit and the cgroup of an adopted attempt;
    the cgroup is also in the store's attempt info).
    """
    with open(os.path.join(attempt_dir, SPEC_FILE), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(meta))


def read_attempt_file(attempt_dir: str) -> dict:
    """``attempt.json`` as a dict; empty if missing or torn."""
    try:
        with open(os.path.join(attempt_dir, SPEC_FILE), encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
