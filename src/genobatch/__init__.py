"""genobatch: AWS Batch semantics and API, running anywhere."""

__version__ = "0.1.0"
