"""The per-attempt cgroup: a kernel-enforced memory limit, exact memory usage and containment.

A container runtime puts each container in its own cgroup; the local backend does the same for
each attempt where the server may create cgroups (as root, or in a delegated cgroup v2 subtree):

* **containment**: the attempt's command joins its cgroup *before* it execs (the wrapper's forked
  child writes ``0``, i.e. itself, to ``cgroup.procs``), so every process it ever starts is in the
  cgroup - ``setsid``, double forks and re-parenting to init cannot leave it. When the attempt
  ends, whatever is left in the cgroup is killed and the cgroup removed.
* **memory**: the limit is the kernel's (``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes``
  on v1, ``memory.max`` with ``memory.swap.max = 0`` on v2): an allocation over it never
  succeeds, instead of being noticed by a sampler after the fact. Usage is what the kernel charges
  the cgroup (shared pages once), and its OOM kills are counted (``memory.oom_control`` /
  ``memory.events``) so the attempt's end can be reported as an out-of-memory kill.

The server's wrapper stays outside the cgroup, so it survives the kill of its job and records the
exit status. Cgroups are created under the server's *own* cgroup (``<own>/genobatch/<group>/``), so
jobs stay inside whatever limits the server itself runs under. Nothing here depends on the
backend: the path is recorded with the attempt, and :func:`open_attempt_cgroup` finds it again
after a restart (issue 9's persistent launcher can reuse this module unchanged).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import signal
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_MOUNTINFO = "/proc/self/mountinfo"
_OWN_CGROUPS = "/proc/self/cgroup"
_NO_SWAP = "0"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


def _int_file(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _keyed(path: str, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed cgroup file (``memory.events``, ``memory.oom_control``)."""
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return None


@dataclass(frozen=True, slots=True)
class AttemptCgroup:
    """One attempt's cgroup: ``version`` 1 (the memory hierarchy) or 2, and its directory."""

    version: int
    path: str

    @property
    def procs_file(self) -> str:
        """The file a process writes ``0`` to in order to join this cgroup."""
        return os.path.join(self.path, "cgroup.procs")

    @property
    def enforcement(self) -> str:
        """How memory is enforced, as the job's native detail states it: ``cgroup v1`` or ``cgroup v2``."""
        return f"cgroup v{self.version}"

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def set_memory_limit(self, limit_bytes: int) -> None:
        """Make ``limit_bytes`` a hard limit on memory, swap included (raises OSError if refused).

        An attempt that reaches it is ended as a whole, as a container is: v2 kills the whole
        cgroup (``memory.oom.group``). v1 has no such switch, and its OOM killer would kill one
        process and let the rest run on (a shell would carry on after its killed child), so the
        kernel's killer is disabled for the cgroup: the allocating process waits at the limit,
        the OOM event wakes the backend (:meth:`oom_eventfd`) and it kills every member at once.
        """
        if self.version == 1:
            _write(os.path.join(self.path, "memory.limit_in_bytes"), str(limit_bytes))
            memsw = os.path.join(self.path, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):  # only with swap accounting; must not be below the limit
                _write(memsw, str(limit_bytes))
            _write(os.path.join(self.path, "memory.oom_control"), "1")
            return
        _write(os.path.join(self.path, "memory.max"), str(limit_bytes))
        swap = os.path.join(self.path, "memory.swap.max")
        if os.path.exists(swap):
            _write(swap, _NO_SWAP)
        group = os.path.join(self.path, "memory.oom.group")
        if os.path.exists(group):
            # An OOM kill ends the whole attempt, as it ends a container (v1 has no such switch:
            # the backend kills the rest itself when it sees the OOM kill).
            with contextlib.suppress(OSError):
                _write(group, "1")

    def out_of_memory(self) -> bool:
        """True once the attempt has hit its limit: v1 waits at it (or its OOM killer killed),
        v2 counts the OOM kill in ``memory.events``."""
        if self.version == 1:
            path = os.path.join(self.path, "memory.oom_control")
            return bool(_keyed(path, "under_oom") or _keyed(path, "oom_kill"))
        return bool(_keyed(os.path.join(self.path, "memory.events"), "oom_kill"))

    def oom_eventfd(self) -> int | None:
        """A non-blocking eventfd that becomes readable when the cgroup hits its limit (v1's
        ``cgroup.event_control`` on ``memory.oom_control``); None where there is none (v2)."""
        if self.version != 1:
            return None
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            control = os.open(os.path.join(self.path, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write(os.path.join(self.path, "cgroup.event_control"), f"{efd} {control}")
            finally:
                os.close(control)  # the registration holds its own reference
        except OSError as exc:
            os.close(efd)
            log.warning("no OOM notification for %s (%s): found by the monitor instead", self.path, exc)
            return None
        return efd

    def working_set_bytes(self) -> int | None:
        """Memory in use now, as ``docker stats`` counts it: the cgroup's charge less the page
        cache it could drop at once (inactive file pages); None if unreadable."""
        name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        usage = _int_file(os.path.join(self.path, name))
        if usage is None:
            return None
        inactive = _keyed(
            os.path.join(self.path, "memory.stat"), "total_inactive_file" if self.version == 1 else "inactive_file"
        )
        return max(0, usage - (inactive or 0))

    def peak_bytes(self) -> int | None:
        """The highest memory charged since creation (v2 needs Linux 5.19 for ``memory.peak``)."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        return _int_file(os.path.join(self.path, name))

    def pids(self) -> list[int]:
        """The processes in the cgroup now."""
        text = _read(self.procs_file) or ""
        return [int(line) for line in text.split() if line.isdigit()]

    def kill(self, timeout_s: float = 5.0) -> bool:
        """SIGKILL every process in the cgroup until it is empty; True if it emptied in time.

        ``cgroup.kill`` (v2, Linux 5.14) does it atomically; otherwise the member list is killed
        repeatedly, which also catches children forked while the previous round was sent (a
        killed process cannot fork again, so the rounds converge).
        """
        kill_file = os.path.join(self.path, "cgroup.kill")
        if self.version == 2 and os.path.exists(kill_file):
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                log.warning("cgroup %s still has processes %s after SIGKILL", self.path, pids)
                return False
            time.sleep(0.01)

    def remove(self) -> bool:
        """Remove the (empty) cgroup; True if it is gone. A cgroup with live members stays."""
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                log.warning("cannot remove cgroup %s: %s", self.path, exc)
            return False
        return True

    def to_info(self) -> dict:
        """The fields that let :func:`open_attempt_cgroup` find this cgroup after a restart."""
        return {"cgroup": self.path, "cgroup_version": self.version}


def open_attempt_cgroup(info: dict) -> AttemptCgroup | None:
    """The cgroup recorded by :meth:`AttemptCgroup.to_info`, if it still exists."""
    path, version = info.get("cgroup"), info.get("cgroup_version")
    if not isinstance(path, str) or version not in (1, 2):
        return None
    cgroup = AttemptCgroup(int(version), path)
    return cgroup if cgroup.exists() else None


def _mounts() -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fs type, super options) of every cgroup file system."""
    mounts = []
    for line in (_read(_MOUNTINFO) or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((fields[3], fields[4].replace("\\040", " "), tail[0], tail[2]))
    return mounts


def _under_mount(mount_root: str, mount_point: str, cgroup_path: str) -> str:
    """The directory of ``cgroup_path`` (as /proc/self/cgroup names it) in a mount of its hierarchy."""
    relative = cgroup_path
    if mount_root != "/" and (cgroup_path == mount_root or cgroup_path.startswith(mount_root + "/")):
        relative = cgroup_path[len(mount_root) :]
    return os.path.join(mount_point, relative.lstrip("/"))


def _own_cgroups() -> dict[str, str]:
    """Hierarchy key -> this process's cgroup path: ``""`` for v2, controller names for v1."""
    own = {}
    for line in (_read(_OWN_CGROUPS) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            own[parts[1]] = parts[2]
    return own


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def attempt_cgroup_name(job_id: str, attempt: int, attempt_dir: str) -> str:
    """A readable, unique leaf name: job id and attempt, plus a digest of the attempt directory
    (two servers, or two test backends, may run a job of the same id at the same time)."""
    digest = hashlib.sha256(attempt_dir.encode()).hexdigest()[:12]
    return f"{_NAME_UNSAFE.sub('_', job_id)[:80]}-{attempt}-{digest}"


def server_cgroup_group(data_dir: str) -> str:
    """The name of a server's subtree: stable across restarts, distinct per data directory."""
    return "server-" + hashlib.sha256(os.path.abspath(data_dir).encode()).hexdigest()[:12]


class CgroupRoot:
    """Where this server creates attempt cgroups; :meth:`detect` finds out whether it can."""

    def __init__(self, version: int, base: str) -> None:
        self.version = version
        self.base = base

    @classmethod
    def detect(cls, group: str) -> CgroupRoot | None:
        """A usable hierarchy (v2 with the memory controller, else v1's memory), or None.

        ``group`` names this server's subtree (``<own cgroup>/genobatch/<group>``). Usable means
        the directories can be created and, on v2, the memory controller enabled for them; a
        server that cannot (not root, no delegation) gets None and falls back to sampling.
        """
        own = _own_cgroups()
        mounts = _mounts()
        if "" in own:
            for root, point, fstype, _ in mounts:
                if fstype == "cgroup2":
                    found = cls._prepare_v2(_under_mount(root, point, own[""]), group)
                    if found is not None:
                        return found
        for key, path in own.items():
            if "memory" not in key.split(","):
                continue
            for root, point, fstype, options in mounts:
                if fstype == "cgroup" and "memory" in options.split(","):
                    found = cls._prepare_v1(_under_mount(root, point, path), group)
                    if found is not None:
                        return found
        return None

    @classmethod
    def _prepare_v1(cls, own_dir: str, group: str) -> CgroupRoot | None:
        base = os.path.join(own_dir, "genobatch", group)
        try:
            os.makedirs(base, exist_ok=True)
        except OSError as exc:
            log.info("cgroup v1 memory hierarchy not writable (%s): memory is sampled", exc)
            return None
        if not os.path.exists(os.path.join(base, "memory.limit_in_bytes")):
            return None
        return cls(1, base)

    @classmethod
    def _prepare_v2(cls, own_dir: str, group: str) -> CgroupRoot | None:
        controllers = (_read(os.path.join(own_dir, "cgroup.controllers")) or "").split()
        if "memory" not in controllers:
            return None  # e.g. a hybrid host: memory is bound to the v1 hierarchy
        top = os.path.join(own_dir, "genobatch")
        base = os.path.join(top, group)
        try:
            # Children get the memory controller only if every level above enables it, and a
            # cgroup with member processes cannot (v2's "no internal processes" rule).
            cls._enable_memory_here(own_dir)
            os.makedirs(top, exist_ok=True)
            cls._enable_memory(top)
            os.makedirs(base, exist_ok=True)
            cls._enable_memory(base)
        except OSError as exc:
            log.info("cgroup v2 at %s not usable for jobs (%s): memory is sampled", own_dir, exc)
            return None
        return cls(2, base)

    @classmethod
    def _enable_memory_here(cls, own_dir: str) -> None:
        """Enable memory for the children of the server's own cgroup.

        Refused (EBUSY) while the cgroup has member processes. If the server is its only member
        - a cgroup delegated to it, as by systemd's ``Delegate=yes`` - it moves itself into a
        leaf ``server`` first, the usual way for a delegated subtree's owner. Otherwise (say,
        a login session's cgroup shared with a shell) the OSError stands and jobs are sampled.
        """
        try:
            cls._enable_memory(own_dir)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            members = (_read(os.path.join(own_dir, "cgroup.procs")) or "").split()
            if members != [str(os.getpid())]:
                raise
        leaf = os.path.join(own_dir, "server")
        os.makedirs(leaf, exist_ok=True)
        _write(os.path.join(leaf, "cgroup.procs"), str(os.getpid()))
        cls._enable_memory(own_dir)

    @staticmethod
    def _enable_memory(directory: str) -> None:
        control = os.path.join(directory, "cgroup.subtree_control")
        if "memory" not in (_read(control) or "").split():
            _write(control, "+memory")

    @property
    def enforcement(self) -> str:
        return f"cgroup v{self.version}"

    def create(self, name: str, memory_limit_bytes: int) -> AttemptCgroup:
        """Create the attempt's cgroup with its memory limit (0: no limit). Raises OSError."""
        cgroup = AttemptCgroup(self.version, os.path.join(self.base, name))
        for _ in range(3):
            try:
                os.mkdir(cgroup.path)
                break
            except FileExistsError:
                break
            except FileNotFoundError:  # the base was released by another backend of this group
                os.makedirs(self.base, exist_ok=True)
                if self.version == 2:
                    self._enable_memory(self.base)
        else:
            raise FileNotFoundError(f"cannot create {cgroup.path}: its parent keeps disappearing")
        if memory_limit_bytes > 0:
            cgroup.set_memory_limit(memory_limit_bytes)
        return cgroup

    def release(self) -> None:
        """Remove this server's (now empty) subtree; one with attempts left to adopt stays."""
        with contextlib.suppress(OSError):
            os.rmdir(self.base)
