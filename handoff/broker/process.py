"""The broker process: start on a free port, wait until it answers, stop in order."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from handoff.broker.admin import answers_metadata, run_sync
from handoff.broker.binary import resolve_broker_binary
from handoff.exceptions import BrokerError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_START_ATTEMPTS = 5
_LOG_TAIL_BYTES = 2000
_TANSU_ENV = frozenset({"SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT", "STORAGE_ENGINE"})


# --------------------------------------------------------------------------- process


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _death_signal_hook() -> Callable[[], None] | None:
    """A preexec hook giving the child SIGTERM when the starting thread dies (Linux only).

    Only for the main thread: PR_SET_PDEATHSIG fires when the *thread* that forked
    exits, so a broker started from a worker thread would die with that thread. This
    keeps a SIGKILLed test run from leaving an orphan broker holding memory.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not after
    except (OSError, AttributeError):
        return None

    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(1, int(signal.SIGTERM))  # 1 == PR_SET_PDEATHSIG

    return hook


_live: weakref.WeakSet[EmbeddedBroker] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for broker in list(_live):
        broker.stop()


class EmbeddedBroker:
    """One Tansu process on ``127.0.0.1``; constructing it does no I/O.

    ``port=None`` picks a free port per attempt (retrying if Tansu finds it taken);
    a fixed port is retried as is until ``start_timeout``. Output goes to
    ``log_file`` (default: a fresh temp dir, see :attr:`log_path`), or nowhere with
    ``quiet=True``. ``binary`` overrides :func:`resolve_broker_binary`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | os.PathLike[str] | None = None,
        log_file: str | os.PathLike[str] | None = None,
        quiet: bool = False,
        start_timeout: float = 15.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._requested_port = port
        self._binary = binary
        self._log_file = Path(log_file) if log_file is not None else None
        self._quiet = quiet
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self.log_path: Path | None = None
        self._log_offset = 0  # where this attempt's output starts in an appended log

    # -- public surface

    @property
    def bootstrap(self) -> str:
        """``host:port`` for aiokafka; raises if the broker is not running."""
        if self._proc is None or self._port is None:
            raise BrokerError("broker is not running")
        return f"{HOST}:{self._port}"

    @property
    def url(self) -> str:
        """``kafka://host:port`` for ``faust.App(broker=...)``."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the broker, wait until it answers Metadata, return ``host:port``."""
        if self.is_running():
            return self.bootstrap
        self.stop()  # reap a broker that died on its own; the new one gets a new port
        binary = resolve_broker_binary(self._binary)
        deadline = time.monotonic() + self._start_timeout
        failures: list[str] = []
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = self._requested_port or _free_port()
            proc = self._spawn(binary, port)
            try:
                reason = self._wait_ready(proc, port, deadline)
            except BaseException:
                self._terminate(proc)
                raise
            if reason is None:
                self._proc, self._port = proc, port
                _live.add(self)
                logger.info(
                    "broker.started bootstrap=%s pid=%s log=%s",
                    self.bootstrap,
                    proc.pid,
                    self.log_path,
                )
                return self.bootstrap
            self._terminate(proc)
            failures.append(f"attempt {attempt} port {port}: {reason}")
            logger.warning(
                "broker.start_failed attempt=%s port=%s reason=%s", attempt, port, reason
            )
            if "AddrInUse" not in reason or time.monotonic() >= deadline:
                break
        raise BrokerError(f"embedded broker ({binary}) did not start: " + "; ".join(failures))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; reaps the process. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _live.discard(self)
        self._terminate(proc)
        logger.info(
            "broker.stopped port=%s pid=%s returncode=%s", self._port, proc.pid, proc.returncode
        )

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port} pid={self.pid}" if self._proc else "stopped"
        return f"<EmbeddedBroker {state}>"

    # -- internals

    def _spawn(self, binary: Path, port: int) -> subprocess.Popen[bytes]:
        listener = f"tcp://{HOST}:{port}"
        argv = [
            str(binary),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
        ]
        argv += ["--storage-engine", "memory://tansu/"]
        out: int | IO[bytes] = subprocess.DEVNULL
        if not self._quiet:
            if self.log_path is None:
                self.log_path = self._log_file or (
                    Path(tempfile.mkdtemp(prefix="handoff-broker-")) / "tansu.log"
                )
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")  # noqa: SIM115 - closed below; the child keeps its copy
        try:
            self._log_offset = out.tell() if not isinstance(out, int) else 0
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,  # Ctrl-C reaches us, and we stop the broker in order
                preexec_fn=_death_signal_hook(),
            )
        except OSError as exc:
            raise BrokerError(f"cannot execute broker binary {str(binary)!r}: {exc}") from exc
        finally:
            if not isinstance(out, int):
                out.close()

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, deadline: float) -> str | None:
        """Poll until the broker accepts TCP and answers a bootstrap; None when ready."""
        delay = 0.01
        while True:
            if "AddrInUse" in self._log_tail():
                return "AddrInUse (port taken)"
            if proc.poll() is not None:
                return f"exited with status {proc.returncode}: {self._log_tail()[-300:]!r}"
            if _accepts_tcp(port) and run_sync(answers_metadata(f"{HOST}:{port}", 0.5)):
                return None
            if time.monotonic() >= deadline:
                return f"not answering after {self._start_timeout:.1f}s"
            time.sleep(delay)  # polling interval, not synchronisation
            delay = min(delay * 2, 0.2)

    def _log_tail(self) -> str:
        if self._quiet or self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as fh:
                end = fh.seek(0, os.SEEK_END)
                fh.seek(max(self._log_offset, end - _LOG_TAIL_BYTES))
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning("broker.kill pid=%s reason=sigterm_timeout", proc.pid)
                proc.kill()
        proc.wait()


def _child_env() -> dict[str, str]:
    # Tansu reads these from the environment; a stray schema registry or OTLP endpoint
    # in the caller's shell must not change how the local broker behaves.
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    env["NO_COLOR"] = "1"  # plain text in the log file
    return env


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- CLI


def run_broker_forever(
    port: int | None = None,
    *,
    log_file: str | os.PathLike[str] | None = None,
    print_fn: Callable[[str], None] | None = None,
) -> int:
    """Run a broker until SIGINT/SIGTERM; print ``bootstrap=127.0.0.1:PORT`` once ready.

    Returns the process exit status for the CLI: 0 after a signal, 1 if the broker
    died on its own. Must be called from the main thread (it installs signal handlers).
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EmbeddedBroker(port, log_file=log_file) as broker:
            emit = print_fn or (lambda line: print(line, flush=True))
            emit(f"bootstrap={broker.bootstrap}")
            while not stop.wait(0.5):
                if not broker.is_running():
                    logger.error("broker.died log=%s", broker.log_path)
                    return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
