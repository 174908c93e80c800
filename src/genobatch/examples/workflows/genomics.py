"""The demo pipeline as a Step Functions workflow: its job definitions, state machine and execution input.

The state machine (``genomics.asl.json``) runs the reference stage, then an inline Map over the samples:
simulate -> align -> sort -> Parallel { call -> evaluate ; stats }, each stage a
``arn:aws:states:::batch:submitJob.sync`` Task with a Retry - the shape of AWS's own genomics workflow
(aws-samples/aws-batch-genomics: isaac -> Parallel { strelka -> snpeff ; samtools stats }).

The stages are the ``genobatch demo`` pipeline's commands; their job definitions
(``genobatch-workflow-<stage>``) differ from the demo's only in naming the sample explicitly
(``--sample Ref::sample``): a Map iteration submits one plain job per sample, not an array child.
Everything here speaks to boto3 clients only, as a user's own code would.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from genobatch.examples.pipeline import STAGES
from genobatch.examples.pipeline.plan import job_definitions as pipeline_definitions

STATE_MACHINE = "genobatch-genomics"
PREFIX = "genobatch-workflow-"
#: Any IAM role ARN is accepted (genobatch runs the jobs itself); this one names what it would be on AWS.
ROLE_ARN = "arn:aws:iam::123456789012:role/genobatch-workflow"
DEFAULT_GENOME_SIZE = 200_000


def definition_text() -> str:
    """The state machine's ASL (JSON text)."""
    return resources.files(__package__).joinpath("genomics.asl.json").read_text()


def job_definitions(python: str) -> list[dict[str, Any]]:
    """RegisterJobDefinition requests: the demo pipeline's, renamed, with the sample (and genome size) as parameters."""
    requests = []
    for stage, request in zip(STAGES, pipeline_definitions(python), strict=True):
        request = json.loads(json.dumps(request))
        request["jobDefinitionName"] = PREFIX + stage
        container = request["containerProperties"]
        if stage == "reference":
            container["command"] += ["--genome-size", "Ref::genome_size"]
            request["parameters"]["genome_size"] = str(DEFAULT_GENOME_SIZE)
        else:
            container["command"] += ["--sample", "Ref::sample"]
            request["parameters"]["sample"] = "0"
        request["tags"]["genobatch:example"] = "workflow"
        requests.append(request)
    return requests


def register_job_definitions(batch: Any, python: str) -> None:
    """Register (a new revision of) each stage's definition; SubmitJob by name takes the latest."""
    for request in job_definitions(python):
        batch.register_job_definition(**request)


def ensure_state_machine(sfn: Any, name: str = STATE_MACHINE) -> str:
    """Create the state machine, or update it if its definition differs; returns its ARN."""
    text = definition_text()
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                arn = machine["stateMachineArn"]
                if sfn.describe_state_machine(stateMachineArn=arn)["definition"] != text:
                    sfn.update_state_machine(stateMachineArn=arn, definition=text)
                return arn
    return sfn.create_state_machine(name=name, definition=text, roleArn=ROLE_ARN)["stateMachineArn"]


def execution_input(
    run_dir: str,
    queue: str,
    samples: int,
    seed: int = 1,
    coverage: float = 30.0,
    genome_size: int = DEFAULT_GENOME_SIZE,
) -> dict[str, Any]:
    """The execution's input. Batch job parameters are strings, so every value is one but the sample list."""
    return {
        "run_dir": run_dir,
        "queue": queue,
        "samples": [str(index) for index in range(samples)],
        "sample_count": str(samples),
        "seed": str(seed),
        "coverage": f"{coverage:g}",
        "genome_size": str(genome_size),
    }
