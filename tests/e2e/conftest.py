"""End-to-end fixtures: both sites and a Celery worker as real processes, and a Chromium page.

`live_server` serves one site from inside the test process; Canopy is two sites (each its own
settings module, cookie names and URLconf) plus a worker, so they run here as they do in
production: gunicorn twice and `celery worker`, on free ports, against the pytest-django test
database (tests use `canopy_sites`, which makes them transactional so the processes see their data).

The browser is Debian's /usr/bin/chromium driven by Playwright's sync API; Playwright never
downloads a browser. A failing test leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portal.celery import app as celery_app
from tests.integration.processes import (
    BASE_DIR,
    Process,
    child_env,
    require_postgres_and_redis,
    wait_for,
    worker_process,
)

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test would
# otherwise raise SynchronousOnlyOperation.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = BASE_DIR / "test-artifacts"
# The sites hash passwords with Django's default hashers; the test settings' fast MD5 hasher is
# unknown to them, so users that sign in through the browser are created with the default ones.
SITE_PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]


@dataclass
class CanopySites:
    staff_url: str
    tenant_url: str
    queue: str
    staff: Process
    tenant: Process
    worker: Process
    mail_dir: Path

    def mails(self) -> list[str]:
        """The mails the sites sent (Django's file email backend), oldest first."""
        return [path.read_text() for path in sorted(self.mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)]

    def link_in_last_mail(self) -> str:
        """The first link of the newest mail (a verification or reset link), waiting for it to arrive."""
        text = wait_for(lambda: self.mails() and self.mails()[-1], timeout=10, what="a mail")
        match = re.search(r"https?://\S+", text)
        assert match, text
        return match.group(0)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()[-3000:]}" for p in (self.staff, self.tenant, self.worker))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_process(site: str, port: int, *, queue: str, data_dir: Path, log_dir: Path, mail_dir: Path) -> Process:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi",
        "--env",
        f"DJANGO_SETTINGS_MODULE=portal.settings.{site}",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--no-control-socket",
        "--access-logfile",
        "-",
    ]
    # Mail goes to files the tests read (a verification link, say), not to the console.
    mail = {
        "CANOPY_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "CANOPY_EMAIL_FILE_PATH": str(mail_dir),
    }
    return Process(site, argv, child_env(queue=queue, data_dir=data_dir, **mail), log_dir / f"{site}.log")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@pytest.fixture(scope="session")
def _canopy_processes(django_db_setup, tmp_path_factory) -> Iterator[CanopySites]:
    require_postgres_and_redis()
    root = tmp_path_factory.mktemp("canopy-sites")
    data_dir = root / "data"
    (data_dir / "static").mkdir(parents=True)
    queue = f"canopy-e2e-{uuid.uuid4().hex[:12]}"

    staff_port, tenant_port = free_port(), free_port()
    common = {"queue": queue, "data_dir": data_dir, "log_dir": root}
    mail_dir = root / "mail"
    mail_dir.mkdir()
    sites = CanopySites(
        staff_url=f"http://127.0.0.1:{staff_port}",
        tenant_url=f"http://127.0.0.1:{tenant_port}",
        queue=queue,
        staff=site_process("staff", staff_port, mail_dir=mail_dir, **common),
        tenant=site_process("tenant", tenant_port, mail_dir=mail_dir, **common),
        worker=worker_process("worker", **common),
        mail_dir=mail_dir,
    )
    processes = (sites.staff, sites.tenant, sites.worker)
    try:
        for process in processes:
            process.start()
        sites.worker.wait_for_log("ready.")
        for url in (sites.staff_url, sites.tenant_url):
            try:
                wait_for(lambda url=url: answers(f"{url}/login/"), timeout=30, what=f"{url} to answer")
            except pytest.fail.Exception:
                print(sites.logs())
                raise
        yield sites
    finally:
        for process in processes:
            process.stop()
        with contextlib.suppress(Exception), celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


@pytest.fixture
def canopy_sites(_canopy_processes, transactional_db, settings) -> Iterator[CanopySites]:
    """The running staff site, tenant site and worker; what the test creates is committed for them.

    Jobs the test process creates go to the e2e worker's queue during the test only: other tests
    run their jobs themselves and must not have this worker race them.
    """
    settings.PASSWORD_HASHERS = SITE_PASSWORD_HASHERS
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = _canopy_processes.queue
    try:
        yield _canopy_processes
    finally:
        celery_app.conf.task_default_queue = previous_queue


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/canopy-test does it as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    finally:
        playwright.stop()


def watch_csp(page) -> list[str]:
    """Collect into `page.csp_violations` each Content-Security-Policy refusal Chromium logs."""
    page.csp_violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_violations.append(m.text))
    return page.csp_violations


@pytest.fixture
def browser_page(browser, request) -> Iterator[object]:
    """A fresh browser context and page; a screenshot of it is kept if the test fails.

    The test fails if the page broke the sites' Content-Security-Policy (Chromium logs every refusal):
    htmx or a template that needs inline script or style would. `page.csp_violations` lists them.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    watch_csp(page)
    yield page
    expected = request.node.get_closest_marker("csp_violations_expected")
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed and not expected:
        assert page.csp_violations == [], "the page broke the Content-Security-Policy"
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so browser_page knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
