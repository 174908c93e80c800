"""Summarise a ``py-spy record --format raw --threads`` profile as text, thread by thread.

py-spy's raw format is one line per distinct stack: ``frame;frame;...;leaf COUNT``, where the
first frame is ``thread (TID): NAME`` when recorded with ``--threads``. Flame graphs are hard to
quote in a report, so this prints, per thread: its share of samples, the leaf frames where the
samples land ("self"), and the project's own functions by inclusive samples.

Run: ``python bench/profile_summary.py /tmp/profile.txt [--top 12] [--focus genobatch/]``
"""

from __future__ import annotations

import argparse
import re
import signal
from collections import Counter, defaultdict

_THREAD = re.compile(r"^thread \((?:0x)?[0-9a-fA-F]+\): ?(.*)$")
# Thread pools number their workers; merging them gives one line per kind of thread.
_WORKER_SUFFIX = re.compile(r"_\d+$")


def parse(path: str) -> dict[str, list[tuple[list[str], int]]]:
    """Stacks per thread name: {thread: [(frames root->leaf, samples)]}."""
    stacks: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            match = _THREAD.match(frames[0])
            thread = "?"
            if match:
                thread = _WORKER_SUFFIX.sub("_N", match.group(1) or "unnamed")
                frames = frames[1:]
            # Process-level prefixes (py-spy adds "process N:..." with --subprocesses) are not ours.
            frames = [frame for frame in frames if not frame.startswith("process ")]
            stacks[thread].append((frames, int(count)))
    return stacks


def short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py:123)``, keeping reports narrow."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    return f"{name} ({where.rsplit('/', 1)[-1]}"


def report(stacks: dict[str, list[tuple[list[str], int]]], top: int, focus: str) -> str:
    total = sum(count for entries in stacks.values() for _, count in entries)
    lines = [f"{total} samples over {len(stacks)} thread kinds"]
    ordered = sorted(stacks.items(), key=lambda item: -sum(count for _, count in item[1]))
    for thread, entries in ordered:
        samples = sum(count for _, count in entries)
        lines.append("")
        lines.append(f"== {thread}: {samples} samples ({100 * samples / total:.1f}% of all)")
        leaves: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        for frames, count in entries:
            if frames:
                leaves[short(frames[-1])] += count
            # Count each function once per stack, so recursion does not inflate it.
            for frame in {f for f in frames if focus in f}:
                inclusive[short(frame)] += count
        lines.append("  self (leaf frames):")
        for frame, count in leaves.most_common(top):
            lines.append(f"    {100 * count / samples:5.1f}%  {frame}")
        if inclusive:
            lines.append(f"  inclusive ({focus} frames):")
            for frame, count in inclusive.most_common(top):
                lines.append(f"    {100 * count / samples:5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", help="py-spy raw output (record --format raw --threads)")
    parser.add_argument("--top", type=int, default=12, help="rows per table (default 12)")
    parser.add_argument("--focus", default="genobatch/", help="path fragment of 'our' frames (default genobatch/)")
    args = parser.parse_args()
    # Die quietly when piped into head, like other command-line text tools.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    print(report(parse(args.profile), args.top, args.focus))


if __name__ == "__main__":
    main()
