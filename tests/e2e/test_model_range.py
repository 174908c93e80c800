"""The API holds for whichever botocore in the supported range is installed.

Every operation of the installed Batch model that genobatch does not handle is answered with the
generic "not supported" ClientException, so a newer botocore's operations (CancelJobs, TerminateJobs
and TerminateServiceJobs arrived in 1.44) need no code to be refused cleanly; and limits the model
states are read from it, not restated.
"""

from __future__ import annotations

import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from genobatch.api.app import HANDLERS
from genobatch.api.model import OPERATIONS, operation_model

UNHANDLED = sorted(set(OPERATIONS) - set(HANDLERS))


def test_the_model_has_operations_genobatch_does_not_handle() -> None:
    assert UNHANDLED, "every operation of the model is handled: the test below would check nothing"


def test_every_unhandled_operation_is_refused_as_not_supported(genobatch_server) -> None:
    # Client-side validation off so that an empty request reaches the server: the refusal must come
    # before the server validates the input (it names the operation, not a missing member).
    client = genobatch_server.client(config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    queues_before = client.describe_job_queues()["jobQueues"]
    for operation in UNHANDLED:
        # Members bound to the URI must be present for botocore to build the path.
        params = {
            name: "x"
            for name, shape in operation_model(operation).input_shape.members.items()
            if shape.serialization.get("location") == "uri"
        }
        with pytest.raises(ClientError) as info:
            getattr(client, xform_name(operation))(**params)
        response = info.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, operation
        assert response["Error"] == {
            "Code": "ClientException",
            "Message": f"{operation} is not supported by genobatch",
        }, operation
    assert client.describe_job_queues()["jobQueues"] == queues_before


def test_tag_resource_keeps_a_resource_within_the_models_tag_limit(batch) -> None:
    # The model bounds one request's tags map; the resource's tags after TagResource merges them
    # with those it has must stay within the same bound.
    most = operation_model("TagResource").input_shape.members["tags"].metadata["max"]
    arn = batch.describe_job_queues(jobQueues=["default"])["jobQueues"][0]["jobQueueArn"]
    before = batch.list_tags_for_resource(resourceArn=arn)["tags"]
    room = most - len(before)
    batch.tag_resource(resourceArn=arn, tags={f"limit-{i}": "v" for i in range(room)})
    full = batch.list_tags_for_resource(resourceArn=arn)["tags"]
    assert len(full) == most
    with pytest.raises(ClientError) as info:
        batch.tag_resource(resourceArn=arn, tags={"one-more": "v"})
    assert info.value.response["Error"]["Code"] == "ClientException"
    assert f"at most {most} tags" in info.value.response["Error"]["Message"]
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == full
    batch.tag_resource(resourceArn=arn, tags={"limit-0": "replaced"})  # replacing a key adds none
    batch.untag_resource(resourceArn=arn, tagKeys=[f"limit-{i}" for i in range(room)])
