"""Disk per finished attempt (issue 9: "at most a few KiB of metadata besides its log").

Runs one array of N children that print nothing on a server that keeps every attempt's records
(``--keep-records forever``: the baseline, what every attempt costs while it runs and until the
rule applies) and on one whose records rule applies at once (``--keep-records 0``), then sums
``jobs/`` of each data directory: the bytes of its files and the blocks the filesystem allocated
for them and for the directories, divided by the attempts. The logs are empty, so everything
counted is metadata (the job's own directory is shared by its attempts; here one each).

    python bench/attempt_disk.py --size 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from launcher import load_average, machine_info, register_definition, run_array, server_for


def disk_use(root: Path) -> tuple[int, int, int, int]:
    """(file bytes, allocated bytes of files and directories, files, directories) under ``root``."""
    size = allocated = files = directories = 0
    for directory, subdirs, names in os.walk(root):
        info = os.lstat(directory)
        allocated += info.st_blocks * 512
        directories += 1
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            size += info.st_size
            allocated += info.st_blocks * 512
            files += 1
        del subdirs  # walked by os.walk itself
    return size, allocated, files, directories


def measure(keep_records: str, size: int, settle_s: float) -> dict:
    """One server: run the array, let the retention thread act, and sum its ``jobs/``."""
    args = ["--keep-records", keep_records, "--retention-interval", "0.2s"]
    with server_for(None, extra_args=args) as server:
        client = server.client()
        definition = register_definition(client, ["true"])
        _, detail, seconds = run_array(client, "default", definition, size, timeout_s=300, poll_s=0.2)
        if detail.get("status") != "SUCCEEDED":
            raise RuntimeError(f"array ended {detail.get('status')}")
        time.sleep(settle_s)  # a few retention passes
        jobs = server.data_dir / "jobs"
        children = [p for p in jobs.iterdir() if ":" in p.name]
        used = disk_use(jobs)
    file_bytes, allocated, files, directories = used
    return {
        "rule": keep_records,
        "attempts": len(children),
        "seconds": seconds,
        "bytes": file_bytes / len(children),
        "allocated": allocated / len(children),
        "files": files / len(children),
        "directories": directories / len(children),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200, help="array children (default 200)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds for the retention thread (default 2)")
    args = parser.parse_args()
    info = machine_info()
    print(f"# {info['date']}  commit {info['commit']}  {info['cpu']}  load {load_average()}", flush=True)
    results = [measure(rule, args.size, args.settle) for rule in ("forever", "0")]
    for r in results:
        print(
            f"--keep-records {r['rule']:>7}: {r['attempts']} attempts; per attempt {r['bytes']:,.0f} bytes in "
            f"{r['files']:.1f} files, {r['allocated'] / 1024:.1f} KiB allocated with {r['directories']:.1f} "
            f"directories"
        )
    base, ruled = results
    print(f"ratio allocated per attempt, records rule / kept: {ruled['allocated'] / base['allocated']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
