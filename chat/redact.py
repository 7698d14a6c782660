"""Pure redaction: secrets are masked everywhere; personal data too when content is stored 'redacted'."""

from __future__ import annotations

import re
from typing import Any

SECRET_PATTERNS = [
    re.compile(r"\b(sk|gw|rk|pk)[-_][A-Za-z0-9_\-]{8,}"),  # OpenAI, gateway and similar keys
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google
    re.compile(r"\bgsk_[A-Za-z0-9]{10,}"),  # Groq
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)\b(api[_-]?key|authorization|x-api-key)([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
]
PII_PATTERNS = [
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"\b(?:\d[ \-]?){13,19}\b"), "[card]"),
    (re.compile(r"(?<!\w)\+?\d[\d ()\-]{7,}\d(?!\w)"), "[phone]"),
]
MASK = "[secret]"


def redact_secrets(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match) -> str:
    if (
        match.re.groups >= 2
        and match.group(2) is not None
        and match.group(1).lower()
        in (
            "api_key",
            "api-key",
            "apikey",
            "authorization",
            "x-api-key",
        )
    ):
        return match.group(1) + match.group(2) + MASK
    return MASK


def redact_personal(text: str) -> str:
    text = redact_secrets(text)
    for pattern, label in PII_PATTERNS:
        text = pattern.sub(label, text)
    return text


def redact_value(value: Any, redact=redact_secrets) -> Any:  # noqa: ANN001
    """Apply `redact` to every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v, redact) for k, v in value.items()}
    return value


def stored_content(messages: Any, answer: str, mode: str) -> tuple[Any, str]:
    """What of a call's prompt and answer is kept, by the LLM_STORE_CONTENT setting."""
    if mode == "none":
        return None, ""
    redact = redact_personal if mode == "redacted" else redact_secrets
    return redact_value(messages, redact), redact(answer)
