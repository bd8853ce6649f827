"""apprise's own result objects, as one failed call to one service returns them."""

from __future__ import annotations

from apprise.logger import NotifyLogEntry
from apprise.result import AppriseResult, AppriseResultStatus, NotifyAttempt, NotifyResult


def failed_call(*lines: str, status: str = "FAILURE") -> AppriseResult:
    """A call whose one service failed its one attempt, having logged ``lines``."""
    attempt = NotifyAttempt(
        AppriseResultStatus[status], logs=[NotifyLogEntry("WARNING", line) for line in lines]
    )
    service = NotifyResult("JSON", "json://host/", attempts=[attempt])
    return AppriseResult(AppriseResultStatus[status], results=[service])
