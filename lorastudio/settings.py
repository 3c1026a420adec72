"""LoRA Studio settings: everything comes from the environment (a .env file is allowed)."""

import os
import secrets
import socket
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from lorastudio.envconfig import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_names,
    env_path,
    env_str,
    load_dotenv,
    parse_database_url,
    secret_key_problem,
)

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(Path(os.environ.get("LORASTUDIO_ENV_FILE", BASE_DIR / ".env")))

# --- Core -----------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (make run writes one into .env)."
        )
    # Debug only: a per-process random key, so nothing guessable is ever built in.
    SECRET_KEY = secrets.token_urlsafe(50)
elif not DEBUG and (problem := secret_key_problem("SECRET_KEY", SECRET_KEY)):
    # Sessions, password resets and the queue's tasks are signed with it: a known or short
    # key lets anyone forge them.
    raise ImproperlyConfigured(problem)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_q",
    "simple_history",
    "ninja",
    "lorastudio",
    "datasets",
    "training",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "lorastudio.middleware.StaffOnlyAdminMiddleware",
]

ROOT_URLCONF = "lorastudio.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "lorastudio.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATA_DIR = env_path("LORASTUDIO_DATA_DIR", BASE_DIR / "data")
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'lorastudio.sqlite3'}"
DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default must work on a fresh clone: make the file's folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # A file, not memory: integration tests share the test database with real workers.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("LORASTUDIO_TEST_DB") or str(DATA_DIR / "test.sqlite3")
    }
# Node processes (qcluster, node_agent) keep their connection between tasks, checked before
# reuse: a new PostgreSQL connection costs about 10 ms of every run's start. deploy/'s units
# set this for them; the web server keeps one connection per request (Django's advice for
# ASGI, whose request threads do not live on).
if env_bool("LORASTUDIO_DB_PERSISTENT", False):
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins refuse further attempts (the right password too) for a while: this many per
# username, or from one client address, within the window (lorastudio/throttle.py).
LORASTUDIO_LOGIN_FAILURES_PER_USERNAME = env_int(
    "LORASTUDIO_LOGIN_FAILURES_PER_USERNAME", 5, minimum=1
)
LORASTUDIO_LOGIN_FAILURES_PER_ADDRESS = env_int(
    "LORASTUDIO_LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1
)
LORASTUDIO_LOGIN_FAILURE_WINDOW_SECONDS = env_int(
    "LORASTUDIO_LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1
)
# The token API (api/): requests per token and minute before it answers 429 with Retry-After.
LORASTUDIO_API_REQUESTS_PER_MINUTE = env_int("LORASTUDIO_API_REQUESTS_PER_MINUTE", 120, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Media (dataset images, thumbnails, LoRA files, samples) are served only through views that
# check ownership; there is deliberately no public MEDIA_URL route.
MEDIA_ROOT = env_path("LORASTUDIO_MEDIA_DIR", DATA_DIR / "media")
MEDIA_URL = "/media/"
LORASTUDIO_WORK_DIR = env_path("LORASTUDIO_WORK_DIR", DATA_DIR / "work")

# --- Uploads and dataset limits -------------------------------------------------------------
LORASTUDIO_MAX_UPLOAD_MB = env_int("LORASTUDIO_MAX_UPLOAD_MB", 50, minimum=1)
LORASTUDIO_MAX_ZIP_MB = env_int("LORASTUDIO_MAX_ZIP_MB", 2048, minimum=1)
LORASTUDIO_MAX_IMAGES_PER_DATASET = env_int("LORASTUDIO_MAX_IMAGES_PER_DATASET", 5000, minimum=1)
LORASTUDIO_MAX_IMAGE_PIXELS = env_int("LORASTUDIO_MAX_IMAGE_PIXELS", 100_000_000, minimum=1)
# sd-scripts reads a caption as a prompt (CLIP sees 75 tokens, T5 a few hundred): a few
# thousand characters is plenty, and the limit keeps one caption from filling the database.
LORASTUDIO_MAX_CAPTION_CHARS = env_int("LORASTUDIO_MAX_CAPTION_CHARS", 2000, minimum=1)
# Processes that decode one upload's images, one image each at a time: with the pixel limit,
# they bound the memory an upload takes (the web server itself holds 1 MiB of a file at most).
LORASTUDIO_INGEST_WORKERS = env_int(
    "LORASTUDIO_INGEST_WORKERS", min(os.cpu_count() or 1, 4), minimum=1
)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("LORASTUDIO_MAX_FILES_PER_UPLOAD", 500, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000

# --- This machine as a training node --------------------------------------------------------
LORASTUDIO_NODE = env_str("LORASTUDIO_NODE") or socket.gethostname().split(".")[0]
LORASTUDIO_GPU_BACKEND = env_str("LORASTUDIO_GPU_BACKEND", "nvml")
if LORASTUDIO_GPU_BACKEND not in ("nvml", "fake"):
    raise ImproperlyConfigured(
        f"LORASTUDIO_GPU_BACKEND must be nvml or fake, not {LORASTUDIO_GPU_BACKEND!r}"
    )
# Fake GPUs for tests and the CPU demo, e.g. "24576:RTX 4090,8192" (total MiB[:name] each).
LORASTUDIO_FAKE_GPUS = env_str("LORASTUDIO_FAKE_GPUS", "")
LORASTUDIO_HEARTBEAT_SECONDS = env_float("LORASTUDIO_HEARTBEAT_SECONDS", 5.0)
LORASTUDIO_STALE_AFTER_SECONDS = env_int("LORASTUDIO_STALE_AFTER_SECONDS", 30, minimum=2)
LORASTUDIO_MAX_RUN_SECONDS = env_int("LORASTUDIO_MAX_RUN_SECONDS", 72 * 3600, minimum=60)
LORASTUDIO_NODE_WORKERS = env_int("LORASTUDIO_NODE_WORKERS", 2, minimum=1)
# Variables (NAME or PREFIX*) a trainer inherits besides the built-in allow-list of
# training/execution/process.py, e.g. WANDB_API_KEY; the app's own secrets never pass.
LORASTUDIO_TRAINER_ENV = env_names("LORASTUDIO_TRAINER_ENV")
# Students' runs wait for staff approval before they are queued.
LORASTUDIO_REQUIRE_APPROVAL = env_bool("LORASTUDIO_REQUIRE_APPROVAL", False)
# A student's unfinished runs (waiting for approval, queued or training) at most; staff have
# no limit. Checked by the plan (training/planning.py) under the owner's row lock at submit.
LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER = env_int("LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER", 3, minimum=1)
# A student's GPU-hours per week (Monday 00:00 in TIME_ZONE), 0 = no limit; staff override it
# per group and per user in the admin (training/quotas.py).
LORASTUDIO_WEEKLY_GPU_HOURS = env_float("LORASTUDIO_WEEKLY_GPU_HOURS", 0.0, minimum=0.0)
# A run that failed as worker_lost or node_offline, with a saved training state, is resumed
# once by a new run that continues from that state (training/resume.py).
LORASTUDIO_AUTO_RESUME = env_bool("LORASTUDIO_AUTO_RESUME", True)
# What the lab pays per kWh: runs' energy (summed by the node agents) is shown with a cost
# when it is above 0 (training/energy.py). The currency is only a label.
LORASTUDIO_COST_PER_KWH = env_float("LORASTUDIO_COST_PER_KWH", 0.0, minimum=0.0)
LORASTUDIO_COST_CURRENCY = env_str("LORASTUDIO_COST_CURRENCY", "EUR")
# Evaluations (training/evaluation/): the most images one may render, and how long one image
# may take on the inference server (the first one loads the base model).
LORASTUDIO_MAX_EVAL_IMAGES = env_int("LORASTUDIO_MAX_EVAL_IMAGES", 200, minimum=1)
LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS = env_float(
    "LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS", 900.0, minimum=0.1
)

# --- Mail and webhooks (training/notifications/) ------------------------------------------
# Django's own names. The console backend prints mails to the worker's output until a lab
# sets EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and its server.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = env_path("EMAIL_FILE_PATH", DATA_DIR / "mail")  # the file backend's folder
# A mail server that does not answer must not hold a queue worker for ever.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "LoRA Studio <lorastudio@localhost>")
# The address mails and webhooks link to (scheme, host and port; no trailing slash).
LORASTUDIO_SITE_URL = env_str("LORASTUDIO_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Webhooks to loopback, private, link-local or reserved addresses are refused (a student
# could otherwise make the server call the lab's own services) unless this is True.
LORASTUDIO_WEBHOOK_ALLOW_PRIVATE = env_bool("LORASTUDIO_WEBHOOK_ALLOW_PRIVATE", False)
# The django-q2 cluster that sends mails and webhooks; empty: the sender's own queue
# (LORASTUDIO_NODE of the process whose change it reports).
LORASTUDIO_NOTIFY_CLUSTER = env_str("LORASTUDIO_NOTIFY_CLUSTER", "")

# --- Websockets -----------------------------------------------------------------------------
# An open socket re-checks the login behind it before every push and this often, and closes
# once the session has ended (lorastudio/websocket.py).
LORASTUDIO_WS_SESSION_CHECK_SECONDS = env_float(
    "LORASTUDIO_WS_SESSION_CHECK_SECONDS", 10.0, minimum=0.01
)

# --- Redis, queue and channel layer ---------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")

Q_CLUSTER = {
    # Shared by every process (tasks are signed with it); the queue is chosen per node below.
    "name": "lorastudio",
    "cluster_name": LORASTUDIO_NODE,
    "workers": LORASTUDIO_NODE_WORKERS,
    "recycle": 50,
    # A training run may take days: timeout above the longest run, retry above timeout and
    # a single attempt, so that the broker never silently starts a run twice.
    "timeout": LORASTUDIO_MAX_RUN_SECONDS,
    "retry": LORASTUDIO_MAX_RUN_SECONDS + 3600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Task queue",
    "sync": env_bool("LORASTUDIO_Q_SYNC", False),
    "ALT_CLUSTERS": {},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    # Shared counters (the API's rate limits) see every web-server process.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env_float("LORASTUDIO_Q_POLL", 0.05)
    # One SQLite file shared by the web server and the workers of this machine (see
    # lorastudio/channel_layer.py for why): delivers across processes, no extra server.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "lorastudio.channel_layer.SQLiteChannelLayer",
            "CONFIG": {"path": str(DATA_DIR / "channels.sqlite3")},
        }
    }

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("LORASTUDIO_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("LORASTUDIO_SSL_REDIRECT", True)
    # One year, this host only, no preload: browsers keep to HTTPS for a year after a visit;
    # subdomains and the preload list are an operator's choice (the domain may hold others).
    SECURE_HSTS_SECONDS = env_int("LORASTUDIO_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": env_str("Q_LOG_LEVEL", "WARNING")}},
}
