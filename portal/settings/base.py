"""Settings shared by both sites, read from the environment.

With no environment at all Canopy runs "embedded": a SQLite file, Celery's filesystem broker and the
simulator fabric, everything under CANOPY_DATA_DIR (default ./var). DATABASE_URL and
CELERY_BROKER_URL switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("CANOPY_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use DJANGO_SECRET_KEY, or a random key kept in the data dir so all processes share it."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

# Secrets at rest (job secrets, driver credentials): comma-separated Fernet keys, newest first.
# MultiFernet decrypts with any of them, so keys rotate by prepending a new one.
CANOPY_SECRET_KEYS = [k for k in os.environ.get("CANOPY_SECRET_KEYS", "").split(",") if k]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "portal",
    "tenants",
    "fabric",
    "websites",
]

MIDDLEWARE = [
    # First: every answer carries its request id, and audit entries their request's context.
    "portal.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the TOTP code step.
    "django_otp.middleware.OTPMiddleware",
    # With CANOPY_STAFF_REQUIRE_TOTP, staff sessions without a verified device reach only enrolment.
    "portal.middleware.StaffTOTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into portal.views.auth.locked_out.
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.site",
            ],
        },
    }
]

WSGI_APPLICATION = "portal.wsgi.application"


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        return dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    # Several processes write one SQLite file: IMMEDIATE transactions take the write lock up front
    # (so select_for_update-style read-then-write can't deadlock) and WAL lets readers go on.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "canopy.sqlite3",
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenants.User"
# django-axes' backend first: it refuses a locked-out account+IP before SiteBackend checks the password.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "portal.auth.SiteBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # no collectstatic needed for the embedded default

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("CANOPY_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "portal.views.errors.csrf_failure"

# --- Behind TLS (all off by default: the embedded default serves plain http://127.0.0.1) -----------
SECURE_SSL_REDIRECT = env_bool("CANOPY_SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(os.environ.get("CANOPY_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CANOPY_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("CANOPY_HSTS_PRELOAD")
# Only behind a proxy that terminates TLS and always sets (never passes through) X-Forwarded-Proto.
if env_bool("CANOPY_TRUST_X_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Content-Security-Policy (django-csp) ---------------------------------------------------------
# Strict: the pages have no inline script or style and htmx runs without eval (see base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "base-uri": [SELF],
        "form-action": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
    },
}

# --- Sign-in lockout (django-axes) ----------------------------------------------------------------
# After this many failed sign-ins of one account from one IP address, that pair is locked out for
# CANOPY_SIGNIN_LOCKOUT_MINUTES; a successful sign-in clears the count. `manage.py axes_reset` unlocks.
AXES_FAILURE_LIMIT = int(os.environ.get("CANOPY_SIGNIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CANOPY_SIGNIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "portal.auth.sign_in_username"
AXES_LOCKOUT_CALLABLE = "portal.views.auth.locked_out"

# --- Staff two-factor sign-in (django-otp TOTP) -----------------------------------------------------
# Staff enrol an authenticator app on their "Two-factor sign-in" page; sign-in then asks for its
# code. With CANOPY_STAFF_REQUIRE_TOTP=true a staff account without one is sent to enrolment
# before it can open anything else (API tokens, made from such a session, are not asked).
CANOPY_STAFF_REQUIRE_TOTP = env_bool("CANOPY_STAFF_REQUIRE_TOTP")
OTP_TOTP_ISSUER = os.environ.get("CANOPY_TOTP_ISSUER", "Canopy admin portal")

# --- API tokens ---------------------------------------------------------------------------------
# Failed token authentications per client address (REMOTE_ADDR) in Django's cache within the window,
# after which that address gets 429 until the window ends. The cache is per process (locmem) unless
# CACHES says otherwise: with several web processes, each counts on its own.
CANOPY_TOKEN_FAILURE_LIMIT = int(os.environ.get("CANOPY_TOKEN_FAILURE_LIMIT", "10"))
CANOPY_TOKEN_FAILURE_WINDOW_SECONDS = int(os.environ.get("CANOPY_TOKEN_FAILURE_WINDOW_SECONDS", "300"))

# --- Email --------------------------------------------------------------------------------------
# Verification links, password resets and sign-up invitations. The console by default (the mail is
# printed in the web process's log); set CANOPY_EMAIL_BACKEND to Django's SMTP backend
# (django.core.mail.backends.smtp.EmailBackend) with EMAIL_HOST etc., or the file backend with
# CANOPY_EMAIL_FILE_PATH. Tests use Django's in-memory backend (django.core.mail.outbox).
EMAIL_BACKEND = os.environ.get("CANOPY_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
if _email_file_path := os.environ.get("CANOPY_EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = _email_file_path
DEFAULT_FROM_EMAIL = os.environ.get("CANOPY_EMAIL_FROM", "Canopy <canopy@localhost>")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = 10
# Where tenants reach the tenant portal, for links the admin portal mails (sign-up invitations);
# default: the admin portal's host name on CANOPY_TENANT_PORT.
CANOPY_TENANT_URL = os.environ.get("CANOPY_TENANT_URL", "")
CANOPY_TENANT_PORT = os.environ.get("CANOPY_TENANT_PORT", "8001")
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600  # a reset link works for three days (and only once)

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")


def filesystem_broker_options(data_dir: Path) -> dict[str, object]:
    """Transport options of Celery's filesystem broker keeping its messages under `data_dir`/broker."""
    broker_dir = data_dir / "broker"
    for sub in ("in", "processed"):
        (broker_dir / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(broker_dir / "in"),
        "data_folder_out": str(broker_dir / "in"),
        "processed_folder": str(broker_dir / "processed"),
        # Exchange tables (kombu's default is ./control, relative to whatever the cwd is).
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }


if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = filesystem_broker_options(DATA_DIR)
    # The filesystem transport has no event loop, so Celery would drive the prefork pool in its
    # synchronous mode, where idle children wait for work on one shared pipe under one shared lock.
    # A child killed while it waits (kill -9, the OOM killer) dies holding that lock: its
    # replacements wait for it forever and the worker takes messages it never runs. The threads
    # pool has no child processes and no such lock, and Django gives each thread its own database
    # connection. The worker is then the only process to kill, and honcho stops the demo when it
    # dies rather than leaving it silently stuck.
    CELERY_WORKER_POOL = "threads"
else:
    # Longer than the longest job: Redis redelivers unacked messages after this, and the claim in
    # portal.jobs drops a redelivery of a job that is still running with a fresh heartbeat.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
    # On Redis the worker runs its event loop and the prefork pool gives each child its own pipe:
    # a killed child is replaced and its task redelivered (acks_late, reject_on_worker_lost).
    CELERY_WORKER_POOL = "prefork"
# A queue name per deployment (or per test run): workers started with `-Q` consume only their own.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CANOPY_CELERY_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
# Beat runs the job sweeper itself (portal.beat), so it works with every worker dead or wedged.
# Other periodic tasks can go in CELERY_BEAT_SCHEDULE; beat sends those to the workers as usual.
CELERY_BEAT_SCHEDULER = "portal.beat:Scheduler"
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the worker's DB connections around every task unless this is set;
# then it recycles them every this many tasks, and portal.celery keeps them in between only as long
# as Django would (CONN_MAX_AGE, health checks): a worker no longer connects anew for every job.
CELERY_DB_REUSE_MAX = 1000

# --- Jobs ---------------------------------------------------------------------------------------
CANOPY_JOB_HEARTBEAT_SECONDS = float(os.environ.get("CANOPY_JOB_HEARTBEAT_SECONDS", "5"))
# A running job whose heartbeat is older than this belongs to a dead worker.
CANOPY_JOB_STALE_SECONDS = float(os.environ.get("CANOPY_JOB_STALE_SECONDS", "30"))
# A queued job older than this whose message may have been lost is sent again by the sweeper.
CANOPY_JOB_REQUEUE_SECONDS = float(os.environ.get("CANOPY_JOB_REQUEUE_SECONDS", "60"))
CANOPY_JOB_MAX_ATTEMPTS = int(os.environ.get("CANOPY_JOB_MAX_ATTEMPTS", "3"))
# A transient failure (the fabric "not answering") is retried after base, 2x base, 4x base... seconds.
CANOPY_JOB_RETRY_BACKOFF_SECONDS = float(os.environ.get("CANOPY_JOB_RETRY_BACKOFF_SECONDS", "2"))
CANOPY_JOB_RETRY_BACKOFF_MAX_SECONDS = float(os.environ.get("CANOPY_JOB_RETRY_BACKOFF_MAX_SECONDS", "60"))
# Deadlines from a job's first start: a default, and per kind ("vm.create=1800,endpoint.sync=300").
CANOPY_JOB_DEADLINE_SECONDS = float(os.environ.get("CANOPY_JOB_DEADLINE_SECONDS", "3600"))
CANOPY_JOB_DEADLINES: dict[str, float] = {
    kind.strip(): float(seconds)
    for kind, _, seconds in (
        item.partition("=") for item in os.environ.get("CANOPY_JOB_DEADLINES", "").split(",") if "=" in item
    )
}
# A queued job nobody took for this long shows "waiting for a worker" (and warns on the staff overview).
CANOPY_JOB_WAITING_SECONDS = float(os.environ.get("CANOPY_JOB_WAITING_SECONDS", "120"))
# A failed job keeps its secret (encrypted) this long so it can be retried; then the sweeper wipes it.
CANOPY_JOB_SECRET_RETENTION_SECONDS = float(os.environ.get("CANOPY_JOB_SECRET_RETENTION_SECONDS", str(24 * 3600)))
# How often beat runs the sweeper (portal.beat).
CANOPY_JOB_SWEEP_SECONDS = float(os.environ.get("CANOPY_JOB_SWEEP_SECONDS", "15"))
# Best-effort bookkeeping that every job of a burst would repeat (a cloud's usage read back after
# each VM create) runs at most once per key per this many seconds in each worker process (0: every time).
CANOPY_JOB_COALESCE_SECONDS = float(os.environ.get("CANOPY_JOB_COALESCE_SECONDS", "1"))

# --- Fabric -------------------------------------------------------------------------------------
# Where simulator endpoints keep their state unless their settings say otherwise.
CANOPY_SIMULATOR_DIR = DATA_DIR / "simulator"

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The portals' own calls; first, so a request without credentials still answers 403.
        "rest_framework.authentication.SessionAuthentication",
        "tenants.auth.TokenAuthentication",  # personal API tokens (Authorization: Bearer cnp_...)
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "portal.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["portal.api.FilterBackend"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `state`; name each choice set instead of letting them collide.
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "portal.models.JobState",
        "AuditOutcomeEnum": "portal.models.AuditOutcome",
        "PlanStateEnum": "tenants.models.PlanState",
        "SubscriptionStateEnum": "tenants.models.SubscriptionState",
        "EndpointStateEnum": "fabric.models.EndpointState",
        "VMStateEnum": "fabric.models.VMState",
        "AddOnStateEnum": "tenants.models.AddOnState",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CANOPY_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The filesystem broker has no host; kombu warns about it on every connection.
        "kombu.connection": {"level": "ERROR"},
    },
}
