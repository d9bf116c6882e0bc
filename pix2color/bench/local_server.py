"""`pix2color serve` in a child process on loopback, for benchmarks and tests.

    with LocalServer(["--poll", "poll"]) as server:
        httpx.get(server.url + "/api/health")

It picks a free port on loopback (127.0.0.1 unless told), waits until the health endpoint answers, and always stops
the server (SIGTERM, then SIGKILL) when the block ends; `kill()` stops it abruptly on purpose.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class LocalServer:
    def __init__(self, arguments: list[str], port: int | None = None, start_timeout: float = 120.0,
                 host: str = "127.0.0.1"):
        self.arguments = arguments
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.output = ""

    def start(self) -> LocalServer:
        command = [sys.executable, "-m", "pix2color.cli", "serve", "--host", self.host, "--port", str(self.port),
                   *self.arguments]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped at start-up: {self.process.stdout.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer within {self.start_timeout:.0f} s")

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash or a scheduler would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process and self.process.stdout:
            self.output = self.process.stdout.read()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
