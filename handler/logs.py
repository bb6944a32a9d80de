"""Logging set-up: JSON lines through Powertools' formatter, on the root logger.

Library modules log with ``logging.getLogger(__name__)``; entry points call
:func:`configure` once. Document content never goes into a log line.
"""

from __future__ import annotations

import logging
import sys

SERVICE = "pagedrop"


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "RapidOCR"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
