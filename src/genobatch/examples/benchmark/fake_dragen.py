"""``python -m genobatch.examples.benchmark.fake_dragen``: a stand-in for DRAGEN on machines without FPGAs.

It is NOT a variant caller. It exercises what an FPGA benchmark needs end to end (seed 004, DRAGEN on
F1 vs F2) - sharding per FPGA, FPGA slots, VCF equivalence after provenance - by behaving like DRAGEN
from the outside:

* it refuses to run unless exactly one FPGA slot is visible (``GENOBATCH_FPGAS``, which the benchmark
  runner exports; DRAGEN runs one process per FPGA chip);
* it "maps and calls" its FASTQ inputs at a simulated rate per chip (:data:`BASES_PER_S`), chosen by
  the slot's FPGA model (``GENOBATCH_FPGA_MODEL``, the catalog's model of the target's type);
* for each input it writes ``<sample>.hard-filtered.vcf`` whose header carries DRAGEN-like
  provenance (``##fileDate``, ``##source``, ``##DRAGENVersion`` with the hardware, and
  ``##DRAGENCommandLine`` with the date and the output path - all different on every run) and whose
  records are a deterministic function of the input bytes, so they are identical on every target;
  and ``<sample>.mapping_metrics.csv``, likewise identical;
* it ends with ``Emulated rate: <bases/s> bases/s``.

**The simulated speeds say nothing about real hardware.** Their ratio is a model, stated here and not
fitted to any published figure: speed per chip is proportional to the host vCPUs per chip of the
instance family the model ships in - F1 (Xilinx VU9P): 8 vCPUs per chip on every size; F2 (AMD VU47P):
24 per chip on every size - the cause seed 004's talk names ("the number of cores per chip is the
largest contributor to the performance increase"). A VU47P chip is therefore 3x a VU9P chip here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

#: Host vCPUs per FPGA chip of the family each model ships in (f1.*: 8; f2.*: 24).
VCPUS_PER_CHIP = {"Xilinx Virtex UltraScale+ VU9P": 8, "AMD Virtex UltraScale+ HBM VU47P": 24}
#: Simulated bases per second per host vCPU behind a chip.
BASES_PER_VCPU_S = 50_000
#: Simulated bases per second of one chip, by FPGA model.
BASES_PER_S = {model: vcpus * BASES_PER_VCPU_S for model, vcpus in VCPUS_PER_CHIP.items()}
CONTIG, CONTIG_LENGTH = "chr1", 100_000
READS_PER_CALL = 50  # one simulated variant per this many reads


def log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    print(f"{stamp} [stand-in dragen] {message}", flush=True)


def sample_name(path: Path) -> str:
    """``sampleA`` for ``sampleA/reads_1.fastq.gz`` (paired files named by their directory), else the stem."""
    stem = path.name.split(".", 1)[0]
    return path.parent.name if stem.startswith("reads") else stem


def read_sequences(path: Path) -> list[str]:
    """The sequences of a (gzipped) FASTQ file: every fourth line from the second."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as stream:
        return [line.strip() for number, line in enumerate(stream) if number % 4 == 1]


def calls(sequences: list[str]) -> list[tuple[int, str, str, int]]:
    """Deterministic (position, ref, alt, depth) 'variants' from the reads, sorted by position."""
    found: dict[int, tuple[str, str, int]] = {}
    for start in range(0, len(sequences), READS_PER_CALL):
        block = sequences[start : start + READS_PER_CALL]
        digest = hashlib.sha256("".join(block).encode()).digest()
        position = 1 + int.from_bytes(digest[:4], "big") % CONTIG_LENGTH
        ref = "ACGT"[digest[4] % 4]
        alt = "ACGT"[(digest[4] + 1 + digest[5] % 3) % 4]
        found.setdefault(position, (ref, alt, len(block)))
    return [(position, *found[position]) for position in sorted(found)]


def write_outputs(path: Path, output_dir: Path, model: str, argv: list[str]) -> tuple[int, int]:
    """Write the sample's VCF and metrics; returns (bases, variants)."""
    sample = sample_name(path)
    sequences = read_sequences(path)
    variants = calls(sequences)
    now = datetime.now(UTC)
    header = [
        "##fileformat=VCFv4.2",
        f"##fileDate={now:%Y%m%d}",
        "##source=DRAGEN_SNV (genobatch stand-in)",
        f'##DRAGENVersion=<ID=dragen,Version="SW: stand-in, HW: {model}">',
        f'##DRAGENCommandLine=<ID=dragen,Date="{now.isoformat()}",CommandLineOptions="{shlex.join(argv)}">',
        f"##contig=<ID={CONTIG},length={CONTIG_LENGTH}>",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Reads behind the call">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]),
    ]
    records = [
        f"{CONTIG}\t{pos}\t.\t{ref}\t{alt}\t60\tPASS\tDP={depth}\tGT:DP\t0/1:{depth}"
        for pos, ref, alt, depth in variants
    ]
    (output_dir / f"{sample}.hard-filtered.vcf").write_text("\n".join(header + records) + "\n")
    bases = sum(len(s) for s in sequences)
    metrics = f"MAPPING/ALIGNING SUMMARY,,Total input reads,{len(sequences)}\n"
    metrics += f"MAPPING/ALIGNING SUMMARY,,Total bases,{bases}\nVARIANT CALLER SUMMARY,,Total,{len(variants)}\n"
    (output_dir / f"{sample}.mapping_metrics.csv").write_text(metrics)
    return bases, len(variants)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("inputs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    slots = [s for s in os.environ.get("GENOBATCH_FPGAS", "").split(",") if s]
    model = os.environ.get("GENOBATCH_FPGA_MODEL", "")
    if len(slots) != 1:
        print(f"fake_dragen: needs exactly one FPGA slot, GENOBATCH_FPGAS={slots}", file=sys.stderr)
        return 1
    if model not in BASES_PER_S:
        print(f"fake_dragen: unknown FPGA model {model!r} (known: {', '.join(BASES_PER_S)})", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    log(f"FPGA slot {slots[0]}: {model}")
    started = time.perf_counter()
    command = ["dragen", *(argv if argv is not None else sys.argv[1:])]
    bases = 0
    for path in args.inputs:
        written, variants = write_outputs(path, args.output_dir, model, command)
        bases += written
        log(f"{sample_name(path)}: {written} bases, {variants} variants")
    time.sleep(bases / BASES_PER_S[model])  # the simulated FPGA time
    log(f"Finished in {time.perf_counter() - started:.3f} s")
    log(f"Emulated rate: {BASES_PER_S[model]:.6e} bases/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
