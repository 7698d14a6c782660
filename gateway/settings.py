"""Settings, read top to bottom: every value comes from the environment or `.env`, with safe defaults."""

from __future__ import annotations

import os
from pathlib import Path

import environ

# litellm fetches price maps and other tables from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
os.environ.setdefault("LITELLM_LOCAL_AUTOROUTER_PRESETS", "True")
os.environ.setdefault("LITELLM_LOCAL_BLOG_POSTS", "True")
os.environ.setdefault("LITELLM_LOCAL_POLICY_TEMPLATES", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# ENV_FILE names another file (or a missing one, to read none): tests start servers with only what they set.
environ.Env.read_env(os.environ.get("ENV_FILE", str(BASE_DIR / ".env")), overwrite=False)

VERSION = "0.1.0"

# --- Core -------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY == "change-me":  # the placeholder of .env.example is no secret either
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    SECRET_KEY = "insecure-development-key-only-for-debug"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served locally: no CDN
    "chat",
    "usage",
]

# Django's own middleware and WhiteNoise, subclassed to run on the event loop under ASGI instead of hopping to a
# thread a dozen times per request (gateway/middleware.py); under WSGI they are Django's.
MIDDLEWARE = [
    "gateway.middleware.SecurityMiddleware",
    "gateway.middleware.AsyncWhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "gateway.middleware.SessionMiddleware",
    "gateway.middleware.CommonMiddleware",
    "gateway.middleware.CsrfViewMiddleware",
    "gateway.middleware.AuthenticationMiddleware",
    "gateway.middleware.MessageMiddleware",
    "gateway.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gateway.urls"
ASGI_APPLICATION = "gateway.asgi.application"
WSGI_APPLICATION = "gateway.wsgi.application"

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

# --- Database and cache -----------------------------------------------------------------
# An empty DATABASE_URL (as .env.example has it) means the default too.
DATABASES = {
    "default": environ.Env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a row is written; IMMEDIATE avoids lock-upgrade deadlocks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Connections are kept (and health-checked), not opened for every query: SQLite included.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
CACHE_URL = env.str("CACHE_URL", default=REDIS_URL)
if CACHE_URL:
    CACHES = {"default": env.cache_url_config(CACHE_URL)}
    if CACHE_URL.startswith(("redis://", "rediss://")):
        CACHES["default"]["BACKEND"] = "django.core.cache.backends.redis.RedisCache"
    # ?key_prefix= in the URL: django-environ spells it in lower case, which Django would ignore.
    if "key_prefix" in CACHES["default"]:
        CACHES["default"]["KEY_PREFIX"] = CACHES["default"].pop("key_prefix")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Static files, i18n -----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
LOGIN_URL = "/login"  # any user may sign in there; /admin/login/ is for staff only

# --- Security ---------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_BODY_BYTES", default=2 * 1024 * 1024)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
# Error pages and reports mask gateway keys, Authorization headers and URL passwords, DEBUG or not.
DEFAULT_EXCEPTION_REPORTER_FILTER = "chat.auth.SecretSafeExceptionReporterFilter"

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["chat.auth.KeyAuthentication", "chat.auth.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["chat.auth.IsCaller"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "chat.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LLM gateway",
    "DESCRIPTION": "One API in front of every LLM provider: each call priced, recorded and counted.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "APPEND_COMPONENTS": {"securitySchemes": {"gatewayKey": {"type": "http", "scheme": "bearer"}}},
    "SECURITY": [{"gatewayKey": []}],
}

# --- The gateway ------------------------------------------------------------------------
# Calls without a key are refused unless this is on (local experiments only).
GATEWAY_ALLOW_ANONYMOUS = env.bool("GATEWAY_ALLOW_ANONYMOUS", default=False)
# Prompts and answers kept in rows and logs: full, redacted (emails, numbers, secrets masked) or none.
LLM_STORE_CONTENT = env.str("LLM_STORE_CONTENT", default="full")
# One JSON file per call; empty disables.
_log_dir = env.str("LLM_LOG_DIR", default="logs/llm")
LLM_LOG_DIR = str(BASE_DIR / _log_dir) if _log_dir else ""  # relative paths are from the project folder
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=120.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_DEFAULT_MODEL = env.str("LLM_DEFAULT_MODEL", default="")
MODEL_CATALOG_FILE = env.str("MODEL_CATALOG_FILE", default="")
# Threads that write rows and log files, off the event loop.
DB_WRITER_THREADS = env.int("DB_WRITER_THREADS", default=4)
RATE_LIMIT_WINDOW_SECONDS = 60

# Provider credentials, read by the catalog; never stored, logged or shown.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_API_BASE = env.str("OPENAI_API_BASE", default="") or env.str("OPENAI_BASE_URL", default="")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
GROQ_API_KEY = env.str("GROQ_API_KEY", default="")
AZURE_API_KEY = env.str("AZURE_API_KEY", default="")
AZURE_API_BASE = env.str("AZURE_API_BASE", default="")
AZURE_API_VERSION = env.str("AZURE_API_VERSION", default="2024-10-21")
AZURE_DEPLOYMENTS = env.list("AZURE_DEPLOYMENTS", default=[])
OLLAMA_API_BASE = env.str("OLLAMA_API_BASE", default="")
OLLAMA_MODELS = env.list("OLLAMA_MODELS", default=[])
VLLM_API_BASE = env.str("VLLM_API_BASE", default="")
VLLM_API_KEY = env.str("VLLM_API_KEY", default="")
VLLM_MODELS = env.list("VLLM_MODELS", default=[])
# The offline demo model is offered when no provider is configured; on/off forces it.
DEMO_MODEL = env.str("DEMO_MODEL", default="auto")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "LiteLLM": {"level": "WARNING"},
        "LiteLLM Router": {"level": "WARNING"},
        "LiteLLM Proxy": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # At DEBUG these log every request body sent to a provider: prompts, whatever LLM_STORE_CONTENT says.
        "openai": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},  # a 4xx is the client's business, not the operator's
    },
}
