"""Resource usage of local attempts: cheap /proc sampling and the wrapper's exit record.

Two sources are combined into Nextflow-style trace fields:

* The wrapper (``wrapper.sh``) writes an *exit record* once it has reaped the command: the exit
  code, the cumulative user/system CPU time of the reaped command tree (the shell's ``times``)
  and its own ``/proc/<pid>/io`` counters, which include the I/O of every reaped descendant. These
  are exact, cost nothing while the job runs, survive a server restart and exist even for jobs
  too short to be sampled.
* Attempts in a cgroup are measured by the kernel (see :mod:`genobatch.backends.cgroup`). For
  the others the monitor thread samples (:func:`scan_processes` reads ``/proc/*/stat`` once per
  tick for all of them, then ``/proc/<pid>/status`` of their members only) and keeps the peaks of
  each command tree's memory; that is the only way to see a peak of a *sum* over processes. A
  tree of several processes is measured by proportional set size (PSS), which splits a page
  shared by N processes N ways, so memory shared after ``fork`` is counted once, as a cgroup
  would charge it, instead of once per process as summed RSS does.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

import psutil

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TIMES_RE = re.compile(r"^(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s$")
# /proc/<pid>/io keys that become trace fields (cancelled_write_bytes is of no interest).
IO_FIELDS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes")

EXIT_FILE = "exit_status"


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the monitor needs."""

    pid: int
    ppid: int
    pgrp: int
    session: int
    cpu_ms: float  # utime + stime + cutime + cstime: the process and its reaped children
    vmem: int  # bytes
    rss: int  # bytes
    start_ticks: int = 0  # start time in clock ticks after boot (tells processes from reused pids)


class ProcessTable:
    """One snapshot of the host's processes, indexed for finding the members of a command tree."""

    def __init__(self, procs: dict[int, ProcStat]) -> None:
        self.procs = procs
        self._children: dict[int, list[int]] | None = None

    def members(self, leader: int) -> list[ProcStat]:
        """Processes of the tree led by ``leader``: its session and process group (which survive
        re-parenting of daemonised grandchildren) plus its descendants (which survive a
        descendant's own ``setsid``)."""
        found = {p.pid for p in self.procs.values() if leader in (p.session, p.pgrp)}
        if leader in self.procs:
            if self._children is None:
                children: dict[int, list[int]] = defaultdict(list)
                for p in self.procs.values():
                    children[p.ppid].append(p.pid)
                self._children = children
            stack, seen = [leader], set()
            while stack:
                pid = stack.pop()
                if pid not in seen:
                    seen.add(pid)
                    stack.extend(self._children.get(pid, ()))
            found |= seen
        return [self.procs[pid] for pid in found if pid in self.procs]


def _parse_stat(pid: int, raw: bytes) -> ProcStat | None:
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    if len(fields) < 22:
        return None
    if fields[0] == b"Z":  # a zombie holds no memory and its CPU time is counted once reaped
        return None
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        session=int(fields[3]),
        cpu_ms=ticks * 1000.0 / _CLK_TCK,
        vmem=int(fields[20]),
        rss=int(fields[21]) * _PAGE_SIZE,
        start_ticks=int(fields[19]),
    )


def _read_stat(pid: int) -> ProcStat | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:  # the process has ended
        return None
    return _parse_stat(pid, raw)


def scan_processes() -> ProcessTable:
    """Read ``/proc/*/stat`` once (about 15 µs per process) and return the snapshot."""
    procs: dict[int, ProcStat] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _read_stat(int(name))
            if stat is not None:
                procs[stat.pid] = stat
    return ProcessTable(procs)


@dataclass(frozen=True, slots=True)
class UsageSample:
    """The summed usage of one command tree at one instant."""

    rss: int  # current memory, bytes (PSS for several processes): what the limit is checked against
    hwm: int  # the members' own peaks (VmHWM) for a single process, else 0, bytes
    vmem_peak: int  # sum of the members' VmPeak, bytes
    cpu_ms: float
    nprocs: int


def _peaks(pid: int) -> tuple[int, int] | None:
    """(VmHWM, VmPeak) in bytes from /proc/<pid>/status; None for a kernel thread or a gone pid."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read()
    except OSError:
        return None
    hwm = peak = None
    for line in text.splitlines():
        if line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1]) * 1024
        elif line.startswith(b"VmPeak:"):
            peak = int(line.split()[1]) * 1024
    return None if hwm is None or peak is None else (hwm, peak)


def _pss(pid: int) -> int | None:
    """The proportional set size of ``pid`` in bytes (smaps_rollup): 0 if it has ended, None if
    it cannot be read (then the caller uses its RSS)."""
    try:
        return psutil.Process(pid).memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0
    except (psutil.Error, AttributeError, OSError):
        return None


def sample_tree(table: ProcessTable, leader: int) -> UsageSample:
    """Measure the tree led by ``leader``: memory, peaks and CPU time.

    One process: its RSS, and its VmHWM/VmPeak peaks (Nextflow's ``peak_rss``/``peak_vmem``), so a
    peak between two samples is not missed. Several processes: the sum of their PSS, which counts
    shared pages once (summed RSS counted pages shared after ``fork`` once per process and killed
    multi-process jobs a container would keep); summed VmHWM would over-count the same way, so it
    is not used as a peak for them. Reading PSS walks each process's page tables, which is why a
    lone process - where PSS and RSS differ only by pages shared with processes outside the job -
    keeps the cheap RSS from ``/proc/<pid>/stat``.
    """
    members = table.members(leader)
    vmem_peak = hwm = 0
    for proc in members:
        peaks = _peaks(proc.pid)
        vmem_peak += peaks[1] if peaks else proc.vmem
        if len(members) == 1:
            hwm = peaks[0] if peaks else proc.rss
    if len(members) > 1:
        memory = 0
        for proc in members:
            pss = _pss(proc.pid)
            memory += proc.rss if pss is None else pss
    else:
        memory = sum(p.rss for p in members)
    return UsageSample(
        rss=memory,
        hwm=hwm,
        vmem_peak=vmem_peak,
        cpu_ms=sum(p.cpu_ms for p in members),
        nprocs=len(members),
    )


def sample_members(pids: list[int], memory: int) -> UsageSample:
    """A cgroup's sample: ``memory`` as the kernel counts it, VmPeak and CPU time of ``pids``."""
    vmem_peak = 0
    cpu_ms = 0.0
    count = 0
    for pid in pids:
        stat = _read_stat(pid)
        if stat is None:
            continue
        peaks = _peaks(pid)
        vmem_peak += peaks[1] if peaks else stat.vmem
        cpu_ms += stat.cpu_ms
        count += 1
    return UsageSample(rss=memory, hwm=0, vmem_peak=vmem_peak, cpu_ms=cpu_ms, nprocs=count)


@dataclass(slots=True)
class UsageAccumulator:
    """Peaks over the samples taken of one attempt."""

    samples: int = 0
    peak_rss: int = 0
    peak_vmem: int = 0
    cpu_ms: float = 0.0

    def add(self, sample: UsageSample) -> None:
        """Fold one sample in (samples of an already-empty tree are ignored)."""
        if sample.nprocs == 0:
            return
        self.samples += 1
        self.peak_rss = max(self.peak_rss, sample.rss, sample.hwm)
        self.peak_vmem = max(self.peak_vmem, sample.vmem_peak)
        self.cpu_ms = max(self.cpu_ms, sample.cpu_ms)


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """What the wrapper wrote to ``exit_status``."""

    exit_code: int
    status: str | None = None  # "notfound": the executable was not found, nothing ran
    signal: str | None = None  # the signal the wrapper forwarded, if any
    cpu_user_ms: float | None = None  # of the reaped command tree
    cpu_sys_ms: float | None = None
    io: dict[str, int] = field(default_factory=dict)
    mtime_ms: int = 0  # when the wrapper wrote it: the end of the attempt


def read_exit_record(attempt_dir: str) -> ExitRecord | None:
    """Parse ``attempt_dir/exit_status``; None when it does not exist (yet) or is incomplete."""
    path = os.path.join(attempt_dir, EXIT_FILE)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            mtime_ms = int(os.fstat(fh.fileno()).st_mtime_ns // 1_000_000)
            lines = fh.read().splitlines()
    except OSError:
        return None
    if not lines or lines[-1].strip() != "end":
        return None  # still being written, or its writer was killed half-way: not a record
    try:
        code = int(lines[0].strip())
    except ValueError:
        return None
    notes: dict[str, str] = {}
    times: list[tuple[float, float]] = []
    for line in lines[1:]:
        match = _TIMES_RE.match(line.strip())
        if match:
            user = int(match[1]) * 60 + float(match[2])
            system = int(match[3]) * 60 + float(match[4])
            times.append((user * 1000.0, system * 1000.0))
        elif "=" in line:
            key, _, value = line.partition("=")
            notes[key.strip()] = value.strip()
    io = {k: int(notes[k]) for k in IO_FIELDS if notes.get(k, "").isdigit()}
    # `times` prints the shell's own times first, then those of its reaped children.
    children = times[1] if len(times) >= 2 else None
    return ExitRecord(
        exit_code=code,
        status=notes.get("status"),
        signal=notes.get("signal"),
        cpu_user_ms=children[0] if children else None,
        cpu_sys_ms=children[1] if children else None,
        io=io,
        mtime_ms=mtime_ms,
    )


def build_usage(
    acc: UsageAccumulator,
    record: ExitRecord | None,
    *,
    start_ms: int | None,
    end_ms: int,
    hostname: str,
) -> dict:
    """Combine the monitor's samples and the wrapper's exit record into trace fields.

    Keys (all optional but ``hostname`` and ``samples``): ``peak_rss``, ``peak_vmem`` (bytes),
    ``cpu_user_ms``, ``cpu_sys_ms``, ``cpu_time_ms``, ``rchar``, ``wchar``, ``syscr``, ``syscw``,
    ``read_bytes``, ``write_bytes``, ``realtime_ms``, ``pct_cpu``. CPU time and I/O are exact
    for the reaped command tree (from the exit record; the I/O counters also include the
    wrapper's own few KiB, e.g. reading its script). Memory peaks need samples: a job shorter
    than one monitor interval has none, so ``peak_rss``/``peak_vmem`` are absent. (``wait4``'s
    ``ru_maxrss`` is no substitute: a process keeps the peak of the memory image it had before
    ``exec``, so the wrapper would report the server's own size.)
    """
    usage: dict = {"hostname": hostname, "samples": acc.samples}
    if acc.peak_rss:
        usage["peak_rss"] = acc.peak_rss
    if acc.peak_vmem:
        usage["peak_vmem"] = acc.peak_vmem
    cpu_ms: float | None = None
    if record is not None and record.cpu_user_ms is not None and record.cpu_sys_ms is not None:
        usage["cpu_user_ms"] = round(record.cpu_user_ms)
        usage["cpu_sys_ms"] = round(record.cpu_sys_ms)
        # Children that were never reaped are missing from `times`; a sample may have seen them.
        cpu_ms = max(record.cpu_user_ms + record.cpu_sys_ms, acc.cpu_ms)
    elif acc.samples:
        cpu_ms = acc.cpu_ms
    if cpu_ms is not None:
        usage["cpu_time_ms"] = round(cpu_ms)
    if record is not None:
        usage.update(record.io)
    if start_ms is not None:
        realtime_ms = max(0, end_ms - start_ms)
        usage["realtime_ms"] = realtime_ms
        if cpu_ms is not None and realtime_ms > 0:
            usage["pct_cpu"] = round(cpu_ms / realtime_ms * 100.0, 1)
    return usage
