"""Test helper: assert that a response is one AWS Batch could have sent.

Import it from any test (``from shapes import assert_matches_output_shape``); pytest puts this
directory on ``sys.path``. The checking itself lives in :func:`genobatch.api.model.check_output`
so there is one implementation, derived from botocore's output shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genobatch.api.model import OUTPUT_REQUIRED_EXEMPT, check_output

__all__ = ["OUTPUT_REQUIRED_EXEMPT", "assert_matches_output_shape", "check_output"]


def assert_matches_output_shape(operation: str, response: Mapping[str, Any], service: str = "batch") -> None:
    """Fail with every problem listed unless ``response`` fits ``operation``'s output shape.

    ``response`` may be the decoded wire body or what boto3 returned (its ``ResponseMetadata``
    is ignored). ``service`` names the botocore model (``logs`` for CloudWatch Logs responses).
    """
    problems = check_output(operation, response, service)
    if problems:
        listing = "\n  ".join(problems)
        raise AssertionError(f"{operation} response does not match the botocore output shape:\n  {listing}")
