from __future__ import annotations

from chat.redact import redact_personal, redact_secrets, stored_content


def test_secrets_are_masked():
    text = (
        "keys sk-proj-abcdefghijklmnop gw_AbCdEfGhIjKlMnOpQrStUv AIzaSyA1234567890abcdefghijkl "
        "Authorization: Bearer abc.def.ghi-jkl api_key=supersecretvalue"
    )

    masked = redact_secrets(text)
    for secret in (
        "sk-proj-abcdefghijklmnop",
        "gw_AbCdEfGhIjKlMnOpQrStUv",
        "AIzaSyA1234567890",
        "abc.def.ghi",
        "supersecretvalue",
    ):
        assert secret not in masked
    assert masked.startswith("keys [secret]")


def test_ordinary_text_is_left_alone():
    assert redact_secrets("ask about sk-learn and task-runner") == "ask about sk-learn and task-runner"


def test_personal_data_is_masked_in_redacted_mode():
    assert redact_personal("write to a.b@c.org, card 4111 1111 1111 1111") == "write to [email], card [card]"


def test_stored_content_follows_the_mode():
    messages = [{"role": "user", "content": "me@x.io"}]

    assert stored_content(messages, "ok", "none") == (None, "")
    assert stored_content(messages, "ok", "full") == (messages, "ok")
    assert stored_content(messages, "ok", "redacted")[0] == [{"role": "user", "content": "[email]"}]
