"""What sending to the CRM can end in.

CRMError(retryable)
├── retryable=True   -- 5xx, 429, timeouts, connection refused: tried again with backoff
└── retryable=False  -- 400 (the CRM's description kept), 401/403 (bad API key: alert an operator)
"""

from __future__ import annotations


class CRMError(Exception):
    """The CRM did not take a request. `retryable` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after


def error_for_status(status_code: int, description: str, retry_after: float | None = None) -> CRMError:
    """The one place an HTTP status becomes a retry policy."""
    if status_code == 429 or status_code >= 500:
        return CRMError(
            f"CRM answered {status_code}: {description}",
            retryable=True,
            status_code=status_code,
            retry_after=retry_after,
        )
    if status_code in (401, 403):
        return CRMError(
            f"CRM refused our API key ({status_code}: {description}); fix crm.api_key, then `kanal outbox retry --all`",
            retryable=False,
            status_code=status_code,
        )
    return CRMError(f"CRM refused the report ({status_code}: {description})", retryable=False, status_code=status_code)
