"""``python -m genobatch.examples.benchmark.fake_dorado``: a stand-in for dorado on machines without GPUs.

It is NOT a basecaller. It exercises what a GPU benchmark needs end to end - sharding per GPU, GPU
pinning and log parsing - by behaving like dorado from the outside: it refuses to run unless exactly
one GPU is visible (``CUDA_VISIBLE_DEVICES``), "loads a model" (a fixed pause), "basecalls" its
inputs at a fixed simulated rate of signal samples per second, writes a deterministic FASTQ per
input (so outputs are identical on every target), and ends with dorado's end-of-run lines::

    [2026-01-01 00:00:00.000] [info] > Finished in (ms): 1234
    [2026-01-01 00:00:00.000] [info] > Simplex reads basecalled: 40
    [2026-01-01 00:00:00.000] [info] > Simplex reads filtered: 0
    [2026-01-01 00:00:00.000] [info] > Basecalled @ Samples/s: 2.000000e+06

A "signal sample" here is one input byte.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

MODEL_LOAD_S = 0.3
SAMPLES_PER_S = 2_000_000  # simulated basecalling speed of one GPU
READ_BYTES = 4000  # one simulated read per this many input bytes


def log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    print(f"[{stamp}] [info] > {message}", flush=True)


def basecall(path: Path, output_dir: Path) -> int:
    """Write a FASTQ of deterministic 'reads' derived from the input bytes; returns reads written."""
    data = path.read_bytes()
    reads = max(1, len(data) // READ_BYTES)
    with open(output_dir / f"{path.stem}.fastq", "w") as out:
        for index in range(reads):
            chunk = data[index * READ_BYTES : (index + 1) * READ_BYTES]
            digest = hashlib.sha256(chunk).digest()
            sequence = "".join("ACGT"[b % 4] for b in digest * 4)
            out.write(f"@{path.stem}_{index}\n{sequence}\n+\n{'I' * len(sequence)}\n")
    return reads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("inputs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
    if len(visible) != 1:
        print(f"fake_dorado: needs exactly one visible GPU, CUDA_VISIBLE_DEVICES={visible}", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log(f"Running on GPU {visible[0]}")
    time.sleep(MODEL_LOAD_S)  # model loading: counted in wall time, not in the samples/s figure
    samples = sum(path.stat().st_size for path in args.inputs)
    time.sleep(samples / SAMPLES_PER_S)
    reads = sum(basecall(path, args.output_dir) for path in args.inputs)
    basecalling_s = samples / SAMPLES_PER_S
    log(f"Finished in (ms): {int((time.perf_counter() - started) * 1000)}")
    log(f"Simplex reads basecalled: {reads}")
    log("Simplex reads filtered: 0")
    log(f"Basecalled @ Samples/s: {samples / basecalling_s:.6e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
