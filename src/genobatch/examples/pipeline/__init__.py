"""A self-contained germline variant-calling pipeline, one command per stage, runnable as AWS Batch jobs.

Each stage is ``python -m genobatch.examples.pipeline <stage> --run-dir DIR [--sample INDEX]``; per-sample stages take
their sample from ``AWS_BATCH_JOB_ARRAY_INDEX`` when ``--sample`` is omitted, so one array child handles one sample.
The stages use real tools shipped as wheels (minimap2 through ``mappy``, samtools and bcftools through ``pysam``) on a
seeded synthetic genome, so a run needs no downloads and its results are checkable against a known truth set:

    reference -> simulate[array] -> align[array] -> sort[array] -> call[array] -> evaluate[array]
                                                               \\-> stats[array]

``plan`` describes the same DAG as AWS Batch requests (job definitions and SubmitJob calls through boto3).
"""

STAGES: tuple[str, ...] = ("reference", "simulate", "align", "sort", "call", "stats", "evaluate")
