"""Worker subprocesses, as the demo, the integration tests and the chaos run start them.

Workers run as real processes (``python -m handoff.cli worker``) so that a kill is a real
kill and recovery is real recovery; their output goes to a log file, never to a pipe that
could fill and block them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from handoff.streams.topics import TopicNames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def all_topics(names: TopicNames) -> list[str]:
    return [
        names.events,
        names.connector_results,
        names.ticket_commands,
        names.crm_commands,
        names.dead_letters,
    ]


def worker_env(
    bootstrap: str,
    data_dir: Path,
    *,
    sandbox_url: str = "",
    log_level: str = "info",
    **extra: str,
) -> dict[str, str]:
    """The environment of a worker: ours plus ``HANDOFF_*`` settings (extra keys upper-cased)."""
    env = dict(os.environ)
    env.update(
        HANDOFF_BROKER=f"kafka://{bootstrap}",
        HANDOFF_DATA_DIR=str(data_dir),
        HANDOFF_LOG_LEVEL=log_level,
    )
    if sandbox_url:
        env["HANDOFF_SANDBOX_URL"] = sandbox_url
    env.update({f"HANDOFF_{k.upper()}": v for k, v in extra.items()})
    return env


class WorkerProcess:
    def __init__(
        self, role: str, env: dict[str, str], log_path: Path, web_port: int | None = None
    ) -> None:
        self.role = role
        self.env = env
        self.log_path = log_path
        self.web_port = web_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "handoff.cli",
                    "worker",
                    "--role",
                    self.role,
                    "--web-port",
                    str(self.web_port),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful: flush, commit, leave the group), SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing committed, no goodbye to the group."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def fail_if_dead(workers: list[WorkerProcess]) -> None:
    """Raise if a worker exited on its own (a clean SIGTERM stop is not a death)."""
    for w in workers:
        if w.proc is not None and w.proc.poll() not in (None, 0, -15):
            raise TimeoutError(f"worker {w.role} exited with {w.proc.returncode}")
