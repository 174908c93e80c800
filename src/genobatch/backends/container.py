"""The container runtime command line of an attempt (Docker or Podman)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from genobatch.backends.base import AttemptSpec

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def container_name(job_id: str, attempt: int) -> str:
    """The container name of an attempt: ``gb-<job id with unsafe characters as '-'>-<attempt>``."""
    return f"gb-{_NAME_UNSAFE.sub('-', job_id)[:200]}-{attempt}"


def container_command(
    runtime: str, spec: AttemptSpec, *, name: str, workdir: str, env_keys: Iterable[str]
) -> list[str]:
    """The ``<runtime> run`` command line that runs ``spec`` in its image.

    Variables are passed as ``-e KEY`` so their values come from the wrapper's environment and
    never appear on a command line. GPUs are requested by host index (``--gpus "device=..."`` for
    Docker, CDI devices for Podman); inside the container they are renumbered from 0, which is
    why the host's ``CUDA_VISIBLE_DEVICES`` is not passed in for GPU jobs.
    """
    kind = os.path.basename(runtime)
    cmd = [runtime, "run", "--rm", "--name", name]
    if spec.cpus:
        cmd += ["--cpuset-cpus", ",".join(map(str, spec.cpus))]
    if spec.memory_mib > 0:
        # memory-swap equal to memory: a hard limit without swap, as on AWS Batch.
        cmd += ["--memory", f"{spec.memory_mib}m", "--memory-swap", f"{spec.memory_mib}m"]
    if spec.gpus:
        if kind == "podman":
            for gpu in spec.gpus:
                cmd += ["--device", f"nvidia.com/gpu={gpu}"]
        else:
            # Docker parses --gpus as CSV: a device list needs the inner quotes.
            cmd += ["--gpus", '"device=' + ",".join(map(str, spec.gpus)) + '"']
    for key in sorted(set(env_keys)):
        cmd += ["-e", key]
    cmd += ["-v", f"{workdir}:{workdir}", "-w", workdir, str(spec.image), *spec.command]
    return cmd
