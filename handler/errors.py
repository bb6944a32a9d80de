"""Typed failures.

Two kinds, as in DESIGN §5: :class:`BadInput` is permanent (the document ends ``FAILED``
with its category, the message is deleted, nothing is retried) and :class:`TransientError`
is a fault worth retrying (the message is left to reappear). Any other exception is a bug.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    """The ``error.category`` values of the status item (DESIGN §4)."""

    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    ENCRYPTED = "encrypted"
    CORRUPT = "corrupt"
    TIMEOUT = "timeout"
    EXHAUSTED = "exhausted"
    INTERNAL = "internal"


class PagedropError(Exception):
    """Base of every error pagedrop raises on purpose."""


class BadInput(PagedropError):
    """The document itself cannot be converted; retrying will not help."""

    def __init__(self, category: ErrorCategory, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message

    def __repr__(self) -> str:
        return f"BadInput({self.category.value!r}, {self.message!r})"


class DocumentTimeout(BadInput):
    """The document took longer than the per-document limit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            ErrorCategory.TIMEOUT,
            f"Conversion took longer than the limit of {seconds:g} "
            f"second{'' if seconds == 1 else 's'}.",
        )


class TransientError(PagedropError):
    """A fault outside the document (network, throttling, 5xx, out of memory): retry later."""


class LeaseLost(PagedropError):
    """Another worker took the document over; this worker must stop writing for it."""


class PoisonMessage(PagedropError):
    """An SQS body that is not an event pagedrop understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EngineUnavailable(PagedropError):
    """An engine cannot start here (missing extra, missing weights, no GPU)."""
