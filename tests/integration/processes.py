"""Child processes for tests that run real workers and web servers against the test database.

Used by tests/integration (Celery workers) and tests/e2e (both sites and a worker). Children run in
their own session so killing the group takes their pool or worker children too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)

# The test process's broker (Redis, from CELERY_BROKER_URL), or the embedded default's, which keeps
# its messages in the data dir the sender and the workers share.
Broker = Literal["redis", "filesystem"]


def require_postgres_and_redis() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("tests with real worker/web processes need PostgreSQL (DATABASE_URL); use scripts/canopy-test")
    if not str(settings.CELERY_BROKER_URL).startswith("redis"):
        pytest.skip("tests with real worker/web processes need Redis (CELERY_BROKER_URL); use scripts/canopy-test")


def database_url() -> str:
    """DATABASE_URL of the test database this process uses, for child processes."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


def child_env(*, queue: str, data_dir: Path, broker: Broker = "redis", **extra: str) -> dict[str, str]:
    """Environment for a child process that must see this test's database, broker queue and keys."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL) if broker == "redis" else "filesystem://",
        "CANOPY_CELERY_QUEUE": queue,
        "CANOPY_DATA_DIR": str(data_dir),
        # Job secrets are encrypted with a key derived from SECRET_KEY: the child needs the same.
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "CANOPY_SECRET_KEYS": ",".join(settings.CANOPY_SECRET_KEYS),
        "CANOPY_JOB_HEARTBEAT_SECONDS": str(settings.CANOPY_JOB_HEARTBEAT_SECONDS),
        "CANOPY_JOB_STALE_SECONDS": str(settings.CANOPY_JOB_STALE_SECONDS),
        "CANOPY_JOB_REQUEUE_SECONDS": str(settings.CANOPY_JOB_REQUEUE_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30, interval: float = 0.2, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; return its value, or fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class Process:
    """A child process in its own session, logging to a file; killed with its whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, *, timeout: float = 30) -> None:
        def seen() -> bool:
            if text in self.log():
                return True
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            return False

        try:
            wait_for(seen, timeout=timeout, what=f"{self.name} to log {text!r}")
        except pytest.fail.Exception:
            print(self.log()[-4000:])
            raise

    def children(self) -> list[int]:
        """Pids of the main process's children (a prefork worker's pool processes)."""
        assert self.proc is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after it.
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    found.append(int(stat.parent.name))
        return sorted(found)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group (main process and its pool children), as a crash would."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self._reap_group()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reap_group()

    def _reap_group(self) -> None:
        # Children of the group (e.g. a prefork pool process) may outlive the main process.
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


CELERY = [sys.executable, "-m", "celery", "-A", "portal"]


def worker_process(
    name: str, *, queue: str, data_dir: Path, log_dir: Path, broker: Broker = "redis", concurrency: int = 1
) -> Process:
    """A `celery worker` on `queue`, with the pool the settings choose for `broker`."""
    argv = [
        *CELERY,
        "worker",
        "--concurrency",
        str(concurrency),
        "-Q",
        queue,
        "-n",
        f"{name}-{uuid.uuid4().hex[:6]}@%h",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-l",
        "info",
    ]
    env = child_env(queue=queue, data_dir=data_dir, broker=broker)
    return Process(name, argv, env, log_dir / f"{name}.log")


def beat_process(
    name: str, *, queue: str, data_dir: Path, log_dir: Path, broker: Broker = "redis", **extra: str
) -> Process:
    """`celery beat`, which runs the job sweeper itself; `extra` goes to its environment."""
    env = child_env(queue=queue, data_dir=data_dir, broker=broker, **extra)
    return Process(name, [*CELERY, "beat", "-l", "info"], env, log_dir / f"{name}.log")
