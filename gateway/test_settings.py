"""Settings for the test suite: the real settings, with test-only defaults set first."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ["DEBUG"] = "False"
os.environ["GATEWAY_ALLOW_ANONYMOUS"] = "False"
for name in (
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GROQ_API_KEY",
    "AZURE_API_KEY",
    "AZURE_API_BASE",
    "OLLAMA_API_BASE",
    "VLLM_API_BASE",
    "MODEL_CATALOG_FILE",
):
    os.environ.pop(name, None)  # the tests build the catalog they need

from gateway.settings import *  # noqa: E402,F403
from gateway.settings import DATABASES  # noqa: E402

# A file, not memory, so that server threads in live tests share one SQLite database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"gateway-test-{os.getpid()}.sqlite3")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LLM_MAX_RETRIES = 0
DB_WRITER_THREADS = 0
LLM_LOG_DIR = ""  # each test that wants logs points this at its own folder
