"""Array-job throughput: one array of N trivial children through genobatch, against the floor.

The floor is what the host itself needs to run N ``true`` processes with full parallelism
(``seq N | xargs -P <nproc> -n1 true``); genobatch does the same work plus the API, the store and
the scheduling, so the ratio genobatch/floor is its overhead. The requirement is a ratio within 10x.

genobatch is timed from just before SubmitJob to the first DescribeJobs (polled every ~20 ms)
that shows the parent SUCCEEDED, on a fresh server with a fresh data dir for every repeat. The
server's own view (parent ``stoppedAt - createdAt``) is printed too; it excludes the polling
granularity and the HTTP round trips.

Run: ``python bench/array_throughput.py [--size 2000] [--repeats 3] [--db postgresql://...]
[--launcher wrapper,persistent]``. With several launchers (``genobatch server --launcher``), each
repeat runs each of them in turn, so they share the floor and the host's drift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from launcher import filesystem_probe, load_average, machine_info, now_ms, register_definition, server_for

POLL_S = 0.02
FINAL = ("SUCCEEDED", "FAILED")


def floor_once(size: int, parallel: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for the host to run ``size`` ``true`` processes, ``parallel`` at a time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(f"seq {size} | xargs -P {parallel} -n1 true", shell=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cpu(times: psutil._common.pcputimes) -> tuple[float, float, float]:
    """(own user CPU, own system CPU, CPU of the children it reaped: wrappers and their commands)."""
    return times.user, times.system, times.children_user + times.children_system


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each kind of the server's threads, by name (``comm``; the
    kernel keeps 15 characters, and pool workers' numbers are merged)."""
    out: dict[str, float] = {}
    for thread in psutil.Process(pid).threads():
        try:
            name = Path(f"/proc/{pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            continue
        name = name.rstrip("0123456789_") or name
        out[name] = out.get(name, 0.0) + thread.user_time + thread.system_time
    return out


def _thread_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after if after[name] - before.get(name, 0.0) > 0.005}


def launcher_process(data_dir: Path) -> psutil.Process | None:
    """The persistent launcher serving ``data_dir`` (its log names its pid), if one runs."""
    with contextlib.suppress(OSError):
        for line in reversed((data_dir / "launcher" / "launcher.log").read_text().splitlines()):
            words = line.split()
            if len(words) >= 3 and words[1] == "launcher" and words[2].isdigit():
                with contextlib.suppress(psutil.Error):
                    return psutil.Process(int(words[2]))
    return None


def _launcher_cpu(process: psutil.Process | None) -> float:
    """The launcher's own CPU plus that of the commands it reaped (0 without a launcher)."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def genobatch_once(
    size: int,
    db_url: str | None,
    timeout_s: float,
    profile_hook: Callable[[int], Callable[[], None]] | None = None,
    want_breakdown: bool = False,
    slots: int = 1,
    launcher: str = "wrapper",
    src: str | None = None,
) -> dict:
    """One fresh server, one array job of ``size`` ``true`` children; timings in seconds.

    ``profile_hook(pid)`` (optional) is called with the server pid right before the submit and
    returns a callable that is invoked once the parent is final (used by ``--py-spy``).
    """
    with server_for(db_url, extra_args=["--launcher", launcher], src=src) as server:
        client = server.client()
        definition = register_definition(client, ["true"], vcpus=1, memory_mib=64)
        # One untimed call first, so the connection and the signer are warm before t0.
        client.describe_job_queues(jobQueues=["default"])
        finish_profile = profile_hook(server.pid) if profile_hook else None
        process = psutil.Process(server.pid)
        launcher_proc = launcher_process(server.data_dir) if launcher == "persistent" else None
        if launcher == "persistent" and launcher_proc is None:
            raise RuntimeError("the server runs no persistent launcher")
        launcher_before = _launcher_cpu(launcher_proc)
        cpu_before = _cpu(process.cpu_times())
        threads_before = thread_cpu(server.pid)
        client_cpu_before = time.process_time()
        t0_ms = now_ms()
        start = time.perf_counter()
        job_id = client.submit_job(
            jobName="throughput", jobQueue="default", jobDefinition=definition, arrayProperties={"size": size}
        )["jobId"]
        submitted = time.perf_counter() - start
        polls = 0
        deadline = start + timeout_s
        while True:
            detail = client.describe_jobs(jobs=[job_id])["jobs"][0]
            polls += 1
            if detail["status"] in FINAL:
                elapsed = time.perf_counter() - start
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"array not final after {timeout_s}s: {detail.get('arrayProperties')}")
            time.sleep(POLL_S)
        cpu_after = _cpu(process.cpu_times())
        threads = _thread_delta(threads_before, thread_cpu(server.pid))
        launcher_cpu = _launcher_cpu(launcher_proc) - launcher_before
        client_cpu = time.process_time() - client_cpu_before
        if finish_profile:
            finish_profile()
        if detail["status"] != "SUCCEEDED":
            summary = detail.get("arrayProperties")
            raise RuntimeError(f"array ended {detail['status']}: {summary}; {failed_sample(client, job_id)}")
        records = children_timeline(client, job_id, server.data_dir / "jobs") if want_breakdown else []
        return {
            "breakdown": breakdown(records, detail["createdAt"], detail["stoppedAt"], slots) if records else None,
            "wall_s": elapsed,
            "submit_s": submitted,
            "server_s": (detail["stoppedAt"] - detail["createdAt"]) / 1000,
            "client_to_created_ms": detail["createdAt"] - t0_ms,
            "polls": polls,
            "server_cpu_s": (cpu_after[0] - cpu_before[0]) + (cpu_after[1] - cpu_before[1]),
            "server_sys_s": cpu_after[1] - cpu_before[1],
            # Processes the server reaped (wrappers and commands), or the launcher and its commands.
            "children_cpu_s": cpu_after[2] - cpu_before[2] + launcher_cpu,
            "client_cpu_s": client_cpu,
            "threads_cpu_s": threads,
        }


def children_timeline(client, job_id: str, jobs_dir: Path) -> list[dict[str, float]]:
    """Per child: the API's ``startedAt``/``stoppedAt`` and the times its attempt directory records.

    The files are the local backend's (a diagnostic, not an API): ``attempt.json`` carries the
    spawn thread's ``created_ms`` (just before Popen), and the wrapper's ``wrapper.pid``,
    ``child.pid`` and ``exit_status`` are written when it starts, when the command has been forked
    and when it has been reaped (mtimes: often only as fine as the kernel's coarse clock).
    A file that is missing (a different backend layout) leaves its key out.
    """
    ids: list[str] = []
    for page in client.get_paginator("list_jobs").paginate(arrayJobId=job_id, jobStatus="SUCCEEDED"):
        ids += [summary["jobId"] for summary in page["jobSummaryList"]]
    records = []
    for start in range(0, len(ids), 100):  # DescribeJobs takes at most 100 ids
        for child in client.describe_jobs(jobs=ids[start : start + 100])["jobs"]:
            attempt = child["attempts"][-1]
            record: dict[str, float] = {"started": attempt["startedAt"], "stopped": attempt["stoppedAt"]}
            attempt_dir = jobs_dir / child["jobId"] / str(len(child["attempts"]))
            with contextlib.suppress(OSError, ValueError, KeyError):
                record["spawn"] = json.loads((attempt_dir / "attempt.json").read_text())["created_ms"]
            for key, name in (("wrapper", "wrapper.pid"), ("child", "child.pid"), ("exit", "exit_status")):
                with contextlib.suppress(OSError):
                    record[key] = (attempt_dir / name).stat().st_mtime_ns / 1e6
            records.append(record)
    return records


def _mean_of(records: list[dict[str, float]], later: str, earlier: str) -> str:
    # Means, not medians: these timestamps are quantised (whole ms from the server, the kernel's
    # coarse clock for files its children write), and a median of quantised values snaps to a
    # grid step while a mean over thousands of children averages the rounding out.
    values = [r[later] - r[earlier] for r in records if later in r and earlier in r]
    return f"{statistics.fmean(values):5.1f}" if values else "  n/a"


def breakdown(records: list[dict[str, float]], created: int, stopped: int, slots: int) -> str:
    """Where the server's wall time went, from the children's own timestamps.

    With ``slots`` jobs at a time, the k-th attempt to be spawned takes the slot freed by the
    (k - slots)-th exit, so "exit -> next spawn" is the hand-off through the server (exit
    detection, engine batch, commit, dispatch). The per-child steps after it are the spawn
    (Popen until the wrapper runs), the wrapper's own start, reporting the pid, and the command's
    life until its exit status is written. Hand-off is a median, the steps means, in milliseconds.
    """
    starts = sorted(r["started"] for r in records)
    stops = sorted(r["stopped"] for r in records)
    gaps = [starts[k] - stops[k - slots] for k in range(slots, len(starts))]
    wall = stopped - created
    lines = [
        f"  children {len(records)}, slots {slots}: first start {starts[0] - created} ms after createdAt, "
        f"parent final {stopped - stops[-1]} ms after the last stop; {slots * wall / len(records):.1f} ms of "
        f"slot time per child; slot hand-off stoppedAt -> next startedAt: median {statistics.median(gaps):.1f} ms, "
        f"p90 {sorted(gaps)[int(0.9 * len(gaps))]:.1f} ms"
    ]
    spawned = sorted((r for r in records if "spawn" in r and "exit" in r), key=lambda r: r["spawn"])
    exits = sorted(r["exit"] for r in spawned)
    if len(spawned) > slots:
        handoff = [spawned[k]["spawn"] - exits[k - slots] for k in range(slots, len(spawned))]
        lines.append(
            f"  mean ms: exit -> next spawn {statistics.fmean(handoff):5.1f} | "
            f"spawn -> child.pid {_mean_of(records, 'child', 'spawn')} | "
            f"spawn -> wrapper.pid {_mean_of(records, 'wrapper', 'spawn')} | "
            f"wrapper.pid -> child.pid {_mean_of(records, 'child', 'wrapper')} | "
            f"child.pid -> startedAt {_mean_of(records, 'started', 'child')} | "
            f"child.pid -> exit_status {_mean_of(records, 'exit', 'child')}"
        )
    return "\n".join(lines)


def failed_sample(client, job_id: str) -> str:
    """Why the first failed child failed, so a failing benchmark says more than "FAILED"."""
    failed = client.list_jobs(arrayJobId=job_id, jobStatus="FAILED", maxResults=1)["jobSummaryList"]
    if not failed:
        return "no failed child listed"
    child = client.describe_jobs(jobs=[failed[0]["jobId"]])["jobs"][0]
    attempts = child.get("attempts") or [{}]
    return f"first failed child: {child.get('statusReason')!r}, last attempt {attempts[-1]}"


def py_spy_hook(output: str, rate: int, mode: str) -> Callable[[int], Callable[[], None]]:
    """A profile hook that runs ``py-spy record`` on the server for the duration of the array.

    ``.txt`` gets py-spy's raw (collapsed stacks) format for ``profile_summary.py``, ``.json``
    speedscope, anything else a flame graph SVG. ``mode`` "wall" keeps blocked threads in the
    samples (for a latency-bound pipeline the waiting is the interesting part), "cpu" keeps the
    threads py-spy thinks are running, and "gil" only the thread holding the GIL (the most honest
    view of where the server's Python CPU time goes, since all its threads share one GIL).
    """

    def hook(pid: int) -> Callable[[], None]:
        cmd = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--threads", "-o", output]
        cmd += {"wall": ["--idle"], "gil": ["--gil"], "cpu": []}[mode]
        if output.endswith(".txt"):
            cmd += ["--format", "raw"]
        elif output.endswith(".json"):
            cmd += ["--format", "speedscope"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # py-spy needs a moment to attach before the interesting part begins

        def finish() -> None:
            # SIGINT makes py-spy stop sampling and write its output.
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            if proc.returncode not in (0, None, -signal.SIGINT):
                print(f"py-spy exited {proc.returncode}: {err.decode(errors='replace')[-500:]}", file=sys.stderr)

        return finish

    return hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000, help="array size (default 2000)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="genobatch repeats (default 3); the floor runs 2 per repeat + 2"
    )
    parser.add_argument("--db", help="database URL; postgresql://... gets a fresh database per repeat (default SQLite)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for one array (default 240)")
    parser.add_argument(
        "--launcher",
        default="wrapper",
        help="comma-separated `genobatch server --launcher` values, each run every repeat (default wrapper)",
    )
    parser.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="also run every repeat from this source tree (e.g. a `git archive` of the previous commit's src/), "
        "before the current one, and print the current/baseline ratios",
    )
    parser.add_argument("--breakdown", action="store_true", help="after each repeat, analyse the children's timestamps")
    parser.add_argument("--py-spy", metavar="OUT", help="profile the server of the first repeat with py-spy into OUT")
    parser.add_argument("--py-spy-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument(
        "--py-spy-mode", choices=("wall", "cpu", "gil"), default="wall", help="which samples to keep (default wall)"
    )
    args = parser.parse_args()

    parallel = len(os.sched_getaffinity(0))
    info = machine_info()
    print(
        f"# {info['date']}  commit {info['commit']}  {info['cpu']} x{parallel}  python {info['python']}  "
        f"load {info['load']}"
    )
    print(f"# filesystem {filesystem_probe()}")
    store = "SQLite" if not args.db else args.db.split("://", 1)[0]

    # Floor runs are interleaved with the genobatch repeats (two before each, two at the end):
    # on a shared, noisy host, load drifts, and interleaving exposes both to the same drift.
    launcher_names = [name.strip() for name in args.launcher.split(",") if name.strip()]
    # Each variant is (label, launcher, source tree); the baseline tree, if any, runs first.
    variants = [(name, name, None) for name in launcher_names]
    if args.baseline_src:
        variants = [(f"{name}@baseline", name, args.baseline_src) for name in launcher_names] + variants
    launchers = [label for label, _, _ in variants]
    floors: list[tuple[float, float]] = []
    runs: dict[str, list[dict]] = {name: [] for name in launchers}
    for repeat in range(args.repeats):
        floors += [floor_once(args.size, parallel) for _ in range(2)]
        # Every other repeat in reverse order (ABBA): a run can leave the host worse for the next
        # one (the kernel keeps removed memory cgroups around while their page cache lives), and a
        # fixed order would charge that to the second variant every time.
        for launcher, launcher_kind, src in variants if repeat % 2 == 0 else variants[::-1]:
            profile = args.py_spy and repeat == 0 and launcher == launchers[-1]
            hook = py_spy_hook(args.py_spy, args.py_spy_rate, args.py_spy_mode) if profile else None
            run = genobatch_once(args.size, args.db, args.timeout, hook, args.breakdown, parallel, launcher_kind, src)
            runs[launcher].append(run)
            print(
                f"genobatch[{store}, {launcher}] repeat {repeat + 1}: submit->SUCCEEDED {run['wall_s']:.3f} s "
                f"(SubmitJob call {run['submit_s'] * 1000:.0f} ms, server stoppedAt-createdAt {run['server_s']:.3f} s, "
                f"{run['polls']} polls); CPU: server {run['server_cpu_s']:.2f} s "
                f"({run['server_sys_s']:.2f} system), "
                f"{'wrappers' if launcher_kind == 'wrapper' else 'launcher'}+commands {run['children_cpu_s']:.2f} s, "
                f"client {run['client_cpu_s']:.2f} s"
            )
            per_thread = sorted(run["threads_cpu_s"].items(), key=lambda item: -item[1])
            cells = ", ".join(f"{name} {1000 * cpu / args.size:.2f}" for name, cpu in per_thread)
            print(f"  server threads, CPU ms/job: {cells}")
            if run["breakdown"]:
                print(run["breakdown"])
    floors += [floor_once(args.size, parallel) for _ in range(2)]

    floor = statistics.median(wall for wall, _ in floors)
    floor_cpu = statistics.median(cpu for _, cpu in floors)
    print(f"floor: seq {args.size} | xargs -P {parallel} -n1 true: " + " ".join(f"{w:.3f}" for w, _ in floors))
    print(f"floor median: {floor:.3f} s ({args.size / floor:.0f} processes/s), CPU {floor_cpu:.2f} s")
    walls = {}
    for launcher in launchers:
        wall = walls[launcher] = statistics.median(run["wall_s"] for run in runs[launcher])
        server_view = statistics.median(run["server_s"] for run in runs[launcher])
        cpu = statistics.median(run["server_cpu_s"] + run["children_cpu_s"] for run in runs[launcher])
        per_job, floor_per_job = 1000 * cpu / args.size, 1000 * floor_cpu / args.size
        print(
            f"genobatch[{store}, {launcher}] median: {wall:.3f} s ({args.size / wall:.0f} jobs/s); "
            f"server view {server_view:.3f} s; "
            f"server+children CPU {cpu:.2f} s ({per_job:.2f} ms/job vs floor {floor_per_job:.2f})"
        )
        ratio = wall / floor
        verdict = "within" if ratio <= 10 else "NOT within"
        print(
            f"ratio genobatch[{launcher}]/floor: {ratio:.2f}x ({verdict} 10x); CPU ratio {per_job / floor_per_job:.1f}x"
        )
    if len(launchers) > 1:
        base = launchers[0]
        for launcher in launchers[1:]:
            ratio = walls[launcher] / walls[base]
            server_cpu = [statistics.median(run["server_cpu_s"] for run in runs[name]) for name in (launcher, base)]
            names = {name for run in runs[base] + runs[launcher] for name in run["threads_cpu_s"]}
            by_thread = []
            for name in sorted(names):
                cpu = [
                    statistics.median(run["threads_cpu_s"].get(name, 0.0) for run in runs[variant])
                    for variant in (base, launcher)
                ]
                if cpu[0] > 0.05:
                    by_thread.append(f"{name} {cpu[1] / cpu[0]:.2f}x")
            print(f"  per server thread, CPU current/baseline (medians): {', '.join(by_thread)}")
            print(
                f"ratio genobatch[{launcher}]/genobatch[{base}]: {ratio:.2f}x (wall, medians); "
                f"server CPU {server_cpu[0] / server_cpu[1]:.2f}x ({server_cpu[1]:.2f} -> {server_cpu[0]:.2f} s)"
            )
    print(f"# load at end {load_average()}")


if __name__ == "__main__":
    main()
