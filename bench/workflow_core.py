"""The workflow interpreter's pure core: cost per event as a Map grows (no server, no I/O).

A Map over N items, each a ``batch:submitJob.sync`` Task, with MaxConcurrency 100, is driven
through ``genobatch.workflow.apply`` the way the server's runner drives it: ExecutionStarted, then
one TaskSucceeded per item in submission order. Printed per N: the time of the whole run, the
time per event (apply() alone), the history events and the size of ``Execution.to_dict()`` (the snapshot the
runner persists) at its largest and at the end. The baseline is N=100 in the same run; the ratio
is time per event against it: flat means the per-event work does not grow with the Map (the
interpreter must not rescan the iterations on each event).

Run: ``python bench/workflow_core.py [--sizes 100 1000 10000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time

from launcher import load_average, machine_info

from genobatch.workflow import ExecutionStarted, RunTask, TaskSucceeded, apply, parse_definition

DEFINITION = parse_definition(
    json.dumps(
        {
            "StartAt": "Samples",
            "States": {
                "Samples": {
                    "Type": "Map",
                    "ItemsPath": "$.samples",
                    "MaxConcurrency": 100,
                    "ItemSelector": {"sample.$": "$$.Map.Item.Value"},
                    "ItemProcessor": {
                        "StartAt": "Align",
                        "States": {
                            "Align": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::batch:submitJob.sync",
                                "Parameters": {"JobName.$": "$.sample", "JobQueue": "q", "JobDefinition": "d"},
                                "ResultSelector": {"JobId.$": "$.JobId", "Status.$": "$.Status"},
                                "End": True,
                            }
                        },
                    },
                    "End": True,
                }
            },
        }
    )
)


def run(size: int) -> dict:
    """One execution of the Map over ``size`` items; returns its measurements."""
    now = 0.0
    started = time.perf_counter()
    execution, commands, history = apply(
        DEFINITION, None, ExecutionStarted({"samples": [f"s{i}" for i in range(size)]}, "b", "arn:e", "arn:sm", 1), now
    )
    elapsed = time.perf_counter() - started
    outstanding = collections.deque(c for c in commands if isinstance(c, RunTask))
    events, history_events, largest = 1, len(history), 0
    while outstanding:
        task = outstanding.popleft()
        now += 0.001
        output = {"JobId": task.token, "Status": "SUCCEEDED", "Container": {"ExitCode": 0}}
        started = time.perf_counter()
        execution, commands, history = apply(DEFINITION, execution, TaskSucceeded(task.token, output), now)
        elapsed += time.perf_counter() - started  # apply() only: the snapshot sizing below is not the core's cost
        outstanding.extend(c for c in commands if isinstance(c, RunTask))
        events += 1
        history_events += len(history)
        if events % 500 == 0:  # sampled: sizing the snapshot on every event would dominate the run
            largest = max(largest, len(json.dumps(execution.to_dict())))
    assert execution.status == "SUCCEEDED" and len(execution.output) == size
    final = len(json.dumps(execution.to_dict()))
    return {
        "elapsed": elapsed,
        "events": events,
        "history": history_events,
        "snapshot_max": max(largest, final),
        "snapshot_end": final,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {machine_info()}")
    print(f"# load at start {load_average()}")
    results: dict[int, list[dict]] = {size: [] for size in args.sizes}
    for _ in range(args.repeats):  # interleaved, so that load drift hits every size alike
        for size in args.sizes:
            results[size].append(run(size))
    baseline = None
    print(
        f"| items | events | history events | run (median) | per event | ratio to N={args.sizes[0]} "
        "| snapshot max / end |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        elapsed = statistics.median(r["elapsed"] for r in results[size])
        sample = results[size][0]
        per_event = elapsed / sample["events"]
        baseline = baseline or per_event
        print(
            f"| {size:,} | {sample['events']:,} | {sample['history']:,} | {elapsed:.3f} s | "
            f"{per_event * 1e6:.0f} us | {per_event / baseline:.2f}x | "
            f"{sample['snapshot_max'] / 1024:.0f} KiB / {sample['snapshot_end'] / 1024:.0f} KiB |"
        )
    print(f"# load at end {load_average()}")


if __name__ == "__main__":
    main()
