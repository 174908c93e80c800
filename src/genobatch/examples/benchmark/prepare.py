"""``python -m genobatch.examples.benchmark.prepare``: make the shipped plans' data sets (seeded).

* ``align DIR``: the example pipeline's reference and simulated paired reads for a few samples of
  different sizes (so shards must be balanced by size, not by file count).
* ``signal DIR``: stand-in raw signal files of different sizes for the GPU-shaped plan.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ALIGN_SAMPLES = 4
SIGNAL_SIZES = (900_000, 700_000, 500_000, 400_000, 300_000, 200_000)


def prepare_align(directory: Path) -> None:
    pipeline = [sys.executable, "-m", "genobatch.examples.pipeline"]
    common = ["--run-dir", str(directory)]
    subprocess.run(
        [*pipeline, "reference", *common, "--samples", str(ALIGN_SAMPLES), "--genome-size", "100000"], check=True
    )
    for index in range(ALIGN_SAMPLES):
        coverage = 10 + 5 * index  # samples of different sizes
        subprocess.run(
            [*pipeline, "simulate", *common, "--sample", str(index), "--coverage", str(coverage)], check=True
        )


def prepare_signal(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index, size in enumerate(SIGNAL_SIZES):
        (directory / f"reads_{index}.pod5").write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("align", "signal"))
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    (prepare_align if args.kind == "align" else prepare_signal)(args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
