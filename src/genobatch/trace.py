"""Trace records: one per attempt, with the fields users know from Nextflow's trace file.

Built from job rows (a pure function of them), so the API, the CLI, cost accounting and reports all
read the same numbers. Times are epoch milliseconds, sizes bytes, ``memory`` the requested MiB.
"""

from __future__ import annotations

from collections.abc import Iterable

SAMPLE_TAG = "genobatch:sample"
#: On an array job: children are samples, named ``<prefix><index>`` (e.g. ``sample-`` -> ``sample-3``).
SAMPLE_PREFIX_TAG = "genobatch:sample-prefix"

USAGE_FIELDS = ("pct_cpu", "peak_rss", "peak_vmem", "rchar", "wchar", "read_bytes", "write_bytes", "cpu_time_ms")


def _requested(spec: dict) -> tuple[int, int, int]:
    scheduling = spec.get("scheduling", {})
    return scheduling.get("vcpus", 1), scheduling.get("memory_mib", 0), scheduling.get("gpus", 0)


def sample_of(row: dict) -> str | None:
    """The sample a job works on: its ``genobatch:sample`` tag, or its array index under a prefix tag."""
    tags = row["spec"].get("tags", {})
    if SAMPLE_TAG in tags:
        return tags[SAMPLE_TAG]
    if row["array_index"] is not None and SAMPLE_PREFIX_TAG in tags:
        return f"{tags[SAMPLE_PREFIX_TAG]}{row['array_index']}"
    return None


def _status(row: dict, number: int, count: int) -> str:
    """Nextflow's words: COMPLETED or FAILED per attempt (earlier attempts of a retried job failed)."""
    if number < count or row["status"] == "FAILED":
        return "FAILED"
    return "COMPLETED" if row["status"] == "SUCCEEDED" else row["status"]


def _remote_placement(info: dict) -> dict | None:
    if not info.get("instance_type"):
        return None
    return {key: info[key] for key in ("instance_type", "purchase_option", "region") if info.get(key)}


def trace_records(rows: Iterable[dict]) -> list[dict]:
    """One record per attempt that was placed, for every job row that runs (array parents skipped)."""
    records = []
    for row in rows:
        if row["state"].get("summary") is not None:
            continue
        spec = row["spec"]
        attempts = row["state"].get("attempts", [])
        vcpus, memory, gpus = _requested(spec)
        definition = row["definition_arn"].rsplit("/", 1)[-1]
        name = row["name"] if row["array_index"] is None else f"{row['name']} ({row['array_index']})"
        for attempt in attempts:
            usage = attempt.get("usage", {})
            start, complete = attempt.get("started_at"), attempt.get("stopped_at")
            record = {
                "task_id": row["id"],
                "name": name,
                "status": _status(row, attempt["number"], len(attempts)),
                "exit": attempt.get("exit_code"),
                "attempt": attempt["number"],
                "submit": row["created_at"],
                "start": start,
                "complete": complete,
                "duration": None if complete is None else complete - row["created_at"],
                "realtime": None if complete is None or start is None else complete - start,
                "queue": row["queue"],
                "compute_environment": attempt["compute_environment"],
                "hostname": usage.get("hostname") or attempt.get("info", {}).get("hostname"),
                "cpus": vcpus,
                "memory": memory,
                "gpus": gpus,
                "job_definition": definition,
                "sample": sample_of(row),
                "tags": spec.get("tags", {}),
                "reason": attempt.get("reason") or attempt.get("status_reason"),
                # Where a remote engine ran it (the aws-batch backend reports the remote's type): priced so.
                "remote_placement": _remote_placement(attempt.get("info") or {}),
            }
            record.update({field: usage.get(field) for field in USAGE_FIELDS})
            records.append(record)
    return records
