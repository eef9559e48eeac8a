"""Kanal running for real on loopback: in this process (a uvicorn thread) or as a `kanal run` subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn
import yaml

from gateway.app import create_app
from gateway.runtime import Runtime
from gateway.settings import KanalSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RunningGateway:
    """The real app served by uvicorn in a background thread; `.url` answers once started.

    `public_base_url` is set to the address it listens on, as a deployment would configure it.
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = KanalSettings.model_validate({**settings, "public_base_url": self.url})
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="kanal-test-gateway", daemon=True)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.kanal
        return runtime

    def __enter__(self) -> RunningGateway:
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), timeout=20, what="gateway start")
        if not self._server.started:
            raise RuntimeError("the gateway failed to start; see the log above")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


def write_config(folder: Path, settings: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kanal.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return folder


class KanalProcess:
    """A `kanal` command as a child process with its own config folder and log file."""

    def __init__(self, config_dir: Path, command: list[str], log_name: str) -> None:
        self.config_dir = config_dir
        self.command = command
        self.log_path = config_dir / log_name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        # Only the config folder speaks: a KANAL_* variable of the test run must not reconfigure the child.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}
        env["KANAL_CONFIG_DIR"] = str(self.config_dir)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *self.command],
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=self.config_dir,
        )
        wait_until(self._ready, timeout=60, what=f"kanal {' '.join(self.command)} (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"kanal {self.command[0]} exited with {self.process.returncode}:\n{self.log_path.read_text()}"
            )
        return self.answers()

    def answers(self) -> bool:
        """Whether the started process is ready for work."""
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as when the machine or the OOM killer takes the process."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None


class GatewayProcess(KanalProcess):
    """`kanal run` on a free port; can be SIGKILLed and started again on the same port."""

    def __init__(self, config_dir: Path, *, no_workers: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = ["run", "--port", str(self.port)] + (["--no-workers"] if no_workers else [])
        super().__init__(config_dir, command, f"gateway-{self.port}.log")

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code in (200, 503)
        except httpx.TransportError:
            return False


class WorkerProcess(KanalProcess):
    """`kanal worker`: the normalizer and dispatcher with no web server."""

    READY = "normalizer and dispatcher running"

    def __init__(self, config_dir: Path) -> None:
        super().__init__(config_dir, ["worker"], f"worker-{free_port()}.log")

    def answers(self) -> bool:
        return self.READY in self.log_path.read_text()
