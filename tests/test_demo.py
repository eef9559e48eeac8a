"""Acceptance 7: `kanal demo` on a fresh folder shows a pending report in the API and a forwarded one in the CRM."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from gateway.demo import DEMO_ADMIN, DEMO_PASSWORD, READY_LINE
from tests.support.servers import free_port

pytestmark = pytest.mark.slow


def test_demo_starts_from_nothing_and_shows_both_ends(tmp_path: Path) -> None:
    port, crm_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--crm-port", str(crm_port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any(READY_LINE in line for line in output):
            assert time.monotonic() < deadline and process.poll() is None, "demo did not get ready:\n" + "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=1))
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": DEMO_ADMIN, "password": DEMO_PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pending = httpx.get(f"{base}/api/v1/reports", params={"state": "pending_review"}, headers=headers).json()[
            "items"
        ]
        forwarded = httpx.get(f"{base}/api/v1/reports", params={"state": "forwarded"}, headers=headers).json()["items"]
        assert len(pending) >= 2 and {r["channel_id"] for r in pending} >= {
            "api:partner",
            "web_form:balaiwarga",
        }
        assert len(forwarded) == 1
        in_crm = httpx.get(f"http://127.0.0.1:{crm_port}/requests/{forwarded[0]['crm_service_request_id']}.json").json()
        assert forwarded[0]["ticket_code"] in in_crm[0]["description"]
        assert (tmp_path / "var" / "demo.sqlite3").exists(), "the demo keeps its data under ./var"
        printed = "".join(output)
        assert DEMO_PASSWORD in printed and f"{base}/channels/web_form:balaiwarga/inbound" in printed
        admin_url = f"{base}/admin "
        assert admin_url in printed, "the demo says where the admin app is"
        login = httpx.get(admin_url.strip(), follow_redirects=True)
        assert login.status_code == 200 and 'name="password"' in login.text, "and it opens on the sign-in form"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
