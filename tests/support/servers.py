"""Kanal running for real on loopback: in this process (a uvicorn thread) or as a `kanal run` subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

# The in-process gateway and the polling helpers are the adapter kit's; Kanal's own suite uses the same.
from kanal_testing.server import KanalUnderTest as RunningGateway
from kanal_testing.server import free_port, wait_until

__all__ = [
    "GatewayProcess",
    "KanalProcess",
    "RunningGateway",
    "WorkerProcess",
    "free_port",
    "wait_until",
    "write_config",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


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
