"""What an admin client does through the review API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.servers import wait_until


def list_reports(http: httpx.Client, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = http.get("/api/v1/reports", params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def wait_for_reports(
    http: httpx.Client, headers: dict[str, str], n: int, *, timeout: float = 30, **params: Any
) -> list[dict[str, Any]]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (found := list_reports(http, headers, **params)) and len(found) >= n and found,
        timeout=timeout,
        interval=0.1,
        what=f"{n} report(s) {params}",
    )


def approve(http: httpx.Client, headers: dict[str, str], key: str, **body: Any) -> httpx.Response:
    return http.post(f"/api/v1/reports/{key}/approve", json=body, headers=headers)
