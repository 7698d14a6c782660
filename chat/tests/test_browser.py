"""The pages in a real headless Chromium: sign in, chat with streaming, stop, errors, the usage page.

Chromium is Debian's `chromium` package (`.ci/run` installs it), driven by Playwright with the system
browser. Screenshots of every page land in `test-artifacts/pages/` for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from chat.models import Request
from chat.tests.live import live, live_gateway, wait_for  # noqa: F401 - fixtures

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - requirements.txt pins it
    sync_playwright = None

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium tries to reach Google's servers on start.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "pages"
PASSWORD = "a-long-test-password-1"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def _no_browser_reason() -> str | None:
    if sync_playwright is None:
        return "Playwright is not installed: run `pip install -r requirements.txt`."
    if CHROMIUM is None:
        return "No Chromium on this machine: `apt-get install chromium` (.ci/run does it) or set CHROMIUM_PATH."
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module, with a fresh profile of its own."""
    reason = _no_browser_reason()
    if reason:
        pytest.skip(reason)
    # Playwright's sync API keeps an event loop running on this thread while it is open; the ORM calls
    # these tests make (users, rows, the database flush) are plain sync code, so they are allowed here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):  # only this run's pictures
        old.unlink()
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        expect.set_options(timeout=15_000)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def alice(live):  # type: ignore[no-untyped-def] # noqa: F811
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def staff(live):  # type: ignore[no-untyped-def] # noqa: F811
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    sam = get_user_model().objects.create_user("sam", "sam@example.com", PASSWORD, is_staff=True)
    sam.user_permissions.add(Permission.objects.get(codename="view_request", content_type__app_label="chat"))
    return sam


class Visit:
    """A browser tab on the live gateway, recording every URL the page asks for and every script error."""

    def __init__(self, browser: Browser, base: str, **context: object) -> None:
        self.base = base
        self.context = browser.new_context(viewport=DESKTOP, **context)
        self.page: Page = self.context.new_page()
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requested.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def sign_in(self, username: str, path: str = "/", shot: str | None = None) -> Page:
        page = self.page
        page.goto(self.base + path)
        expect(page).to_have_url(re.compile(r"/login\?next="))
        if shot:
            self.shot(shot)
        page.get_by_label("Username", exact=True).fill(username)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(self.base + path)
        page.wait_for_load_state("load")  # the URL changes before the page's scripts have run
        return page

    def shot(self, name: str, **options: object) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), **options)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, live) -> Iterator[Visit]:  # noqa: F811
    tab = Visit(browser, live)
    yield tab
    tab.close()
    assert not tab.errors, f"script errors on the page: {tab.errors}"
    outside = [u for u in tab.requested if not u.startswith((live, "data:", "blob:"))]
    assert not outside, f"the page reached outside the gateway: {outside}"


def send(page: Page, text: str, model: str | None = None) -> None:
    if model:
        page.get_by_label("Model", exact=True).select_option(model)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def last_answer(page: Page):  # type: ignore[no-untyped-def]
    return page.locator(".message-assistant").last


def test_a_person_signs_in_sends_a_message_and_watches_it_stream_with_its_cost_line(visit, alice, upstream):
    page = visit.sign_in("alice", shot="login")
    expect(page.locator("#connection")).to_have_text("Gateway and database up")
    option = page.get_by_label("Model", exact=True).locator("optgroup[label=openai] option[value='gpt-4o-mini']")
    expect(option).to_contain_text("$0.15 in · $0.60 out")
    page.get_by_label("Application", exact=True).fill("support-bot")

    send(page, "Hello there streaming world [[chunks:40]] [[chunk_delay:0.04]]", model="gpt-4o-mini")

    answer = last_answer(page)
    # Mid-stream: part of the answer is on the page while the rest is still coming.
    expect(answer).to_have_attribute("data-status", "streaming")
    expect(answer.locator(".message-body")).to_contain_text("Echo: Hello")
    assert answer.get_attribute("data-status") == "streaming"
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(answer).to_have_attribute("data-status", "done")

    row = wait_for(lambda: Request.objects.filter(status="success").first())
    assert row is not None
    meta = answer.locator(".meta")
    expect(meta.locator(".model")).to_have_text("gpt-4o-mini")
    expect(meta.locator(".tokens")).to_have_text(
        f"{row.prompt_tokens} in · {row.completion_tokens} out · {row.total_tokens} tokens"
    )
    assert row.cost_usd > 0
    expect(meta.locator(".cost")).to_have_text("$" + format(row.cost_usd.normalize(), "f"))
    expect(meta.locator(".latency")).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))
    expect(meta.locator(".ttft")).to_have_text(re.compile(r"^first token \d+(\.\d+)? m?s$"))
    expect(meta.locator(".request-id")).to_have_attribute("data-request-id", str(row.id))
    assert (row.user_id, row.application_id, row.streamed) == ("alice", "web", True)
    assert row.metadata["application"] == "support-bot"
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    visit.shot("chat-light")

    # The conversation is kept in the page: the second question goes with the first exchange.
    send(page, "And a follow-up")
    expect(page.locator(".message-assistant[data-status=done]")).to_have_count(2)
    followup = wait_for(lambda: Request.objects.filter(status="success").count() == 2 and Request.objects.first())
    assert [m["role"] for m in followup.messages] == ["user", "assistant", "user"]
    assert followup.messages[1]["content"] == row.response

    page.reload()
    expect(page.locator(".message-assistant[data-status=done]")).to_have_count(2)


def test_the_page_reads_well_in_dark_and_at_phone_width(browser, live, alice):  # noqa: F811
    for name, options in {
        "chat-dark": {"color_scheme": "dark"},
        "chat-phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
        "chat-phone-dark": {"viewport": PHONE, "is_mobile": True, "has_touch": True, "color_scheme": "dark"},
    }.items():
        viewport = options.pop("viewport", DESKTOP)
        tab = Visit(browser, live, **options)
        tab.page.set_viewport_size(viewport)
        page = tab.sign_in("alice", shot=name.replace("chat", "login"))
        send(page, "Show me **bold**, `code` and a list:\n\n- one\n- two", model="offline-demo")
        expect(last_answer(page)).to_have_attribute("data-status", "done")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"{name}: the page is {width}px wide in a {viewport['width']}px window"
        for control in ("Model", "Application", "Message"):
            box = page.get_by_label(control, exact=True).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], f"{name}: {control} is cut"
        tab.shot(name)
        tab.close()
        assert not tab.errors


def test_the_stop_button_cancels_the_stream_and_keeps_what_came(visit, alice, upstream):
    page = visit.sign_in("alice")
    aborted = upstream.stats.streams_aborted

    send(page, "Count slowly [[chunks:300]] [[chunk_delay:0.05]]", model="gpt-4o-mini")
    answer = last_answer(page)
    expect(answer.locator(".message-body")).to_contain_text("Echo: Count")
    page.get_by_role("button", name="Stop").click()

    expect(answer).to_have_attribute("data-status", "stopped")
    expect(answer.locator(".stopped")).to_have_text(re.compile(r"^Stopped after "))
    expect(answer.locator(".message-body")).to_contain_text("Echo: Count slowly")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    row = wait_for(lambda: Request.objects.filter(status="cancelled").first(), timeout=10)
    assert row is not None, "the stopped call left no cancelled row"
    assert row.response.startswith("Echo: Count")
    assert wait_for(lambda: upstream.stats.streams_aborted > aborted, timeout=10)
    visit.shot("chat-stopped")


def test_escape_stops_a_stream_from_the_keyboard(visit, alice):
    page = visit.sign_in("alice")
    prompt = page.get_by_label("Message", exact=True)
    expect(prompt).to_be_focused()
    page.keyboard.type("Slow one [[chunks:300]] [[chunk_delay:0.05]]")
    page.get_by_label("Model", exact=True).select_option("gpt-4o-mini")
    prompt.focus()
    page.keyboard.press("Enter")
    answer = last_answer(page)
    expect(answer.locator(".message-body")).to_contain_text("Echo:")
    page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-status", "stopped")
    expect(prompt).to_be_focused()


FOCUSED_NAME = """() => {
    const el = document.activeElement;
    return el.getAttribute("aria-label") || (el.labels && el.labels[0] && el.labels[0].textContent) || el.textContent;
}"""
FOCUS_RING = """() => {
    const style = getComputedStyle(document.activeElement);
    return style.outlineStyle !== "none" || style.boxShadow !== "none";
}"""


def test_the_chat_is_usable_with_the_keyboard_alone(visit, alice):
    page = visit.sign_in("alice")
    prompt = page.get_by_label("Message", exact=True)
    expect(prompt).to_be_focused()

    # Back through the conversation and the settings to the model picker, each with a visible focus ring.
    for name in ("Conversation", "New conversation", "Application", "Model"):
        page.keyboard.press("Shift+Tab")
        focused = page.evaluate(FOCUSED_NAME)
        assert focused.strip() == name, f"expected {name}, focus is on {focused!r}"
        assert page.evaluate(FOCUS_RING), f"{name} shows no focus ring"
    for _ in range(4):
        page.keyboard.press("Tab")
    expect(prompt).to_be_focused()

    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("on two lines")
    page.keyboard.press("Enter")

    expect(page.locator(".message-user .message-text").last).to_have_text("Typed, not clicked\non two lines")
    expect(last_answer(page)).to_have_attribute("data-status", "done")
    expect(prompt).to_be_focused()


def test_a_provider_failure_says_so_and_keeps_the_typed_text(visit, alice):
    page = visit.sign_in("alice")
    question = "Please answer [[status:500]]"

    send(page, question, model="gpt-4o-mini")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The provider is down")
    expect(alert).to_contain_text("upstream says 500")
    expect(page.get_by_label("Message", exact=True)).to_have_value(question)
    row = wait_for(lambda: Request.objects.filter(status="error").first())
    assert row is not None and row.http_status == 502
    visit.shot("chat-error")

    # Trying again sends the same question once more, and nothing of it is lost meanwhile.
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("alert")).to_have_count(1)
    assert wait_for(lambda: Request.objects.filter(status="error").count() == 2)


def test_a_signed_out_session_says_so_and_keeps_the_typed_text(visit, alice, upstream):
    page = visit.sign_in("alice")
    before = upstream.stats.requests
    visit.context.clear_cookies()

    send(page, "Is anyone there?", model="gpt-4o-mini")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You are signed out")
    expect(alert.get_by_role("link", name=re.compile("Sign in again"))).to_have_attribute(
        "href", re.compile(r"^/login\?next=/")
    )
    expect(page.get_by_label("Message", exact=True)).to_have_value("Is anyone there?")
    assert upstream.stats.requests == before
    assert not Request.objects.exists()

    # Signing in again in the tab the link opens lets this page send the kept question as it is.
    with visit.context.expect_page() as opened:
        alert.get_by_role("link", name=re.compile("Sign in again")).click()
    login = opened.value
    login.get_by_label("Username", exact=True).fill("alice")
    login.get_by_label("Password", exact=True).fill(PASSWORD)
    login.get_by_role("button", name="Sign in").click()
    expect(login).to_have_url(visit.base + "/")
    login.close()
    page.get_by_role("button", name="Try again").click()
    expect(last_answer(page)).to_have_attribute("data-status", "done")
    assert wait_for(lambda: Request.objects.filter(status="success", user_id="alice").exists())


def test_an_exhausted_budget_says_so_and_keeps_the_typed_text(visit, alice, upstream):
    from chat.models import UserBudget

    UserBudget.objects.create(user_id="alice", budget_usd=Decimal("0.000001"), budget_period="day")
    page = visit.sign_in("alice")
    before = upstream.stats.requests

    send(page, "An expensive question", model="gpt-4o-mini")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Budget exceeded")
    expect(alert).to_contain_text("Ask an administrator to raise the budget")
    expect(page.get_by_label("Message", exact=True)).to_have_value("An expensive question")
    assert upstream.stats.requests == before
    assert not Request.objects.exists()
    visit.shot("chat-budget")


def test_the_connection_status_shows_when_the_gateway_is_unreachable(visit, alice):
    page = visit.sign_in("alice")
    expect(page.locator("#connection")).to_have_attribute("data-state", "ok")

    page.route("**/health", lambda route: route.abort())
    page.reload()

    status = page.locator("#connection")
    expect(status).to_have_attribute("data-state", "down")
    expect(status).to_have_text("Gateway unreachable")


def test_a_model_answer_is_rendered_as_text_and_never_runs_as_script(visit, alice):
    page = visit.sign_in("alice")
    attack = '**bold** <img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> [link](javascript:alert(1))'

    send(page, attack, model="offline-demo")

    body = last_answer(page).locator(".message-body")
    expect(last_answer(page)).to_have_attribute("data-status", "done")
    expect(body.locator("strong")).to_have_text("bold")
    expect(body).to_contain_text('<img src=x onerror="window.pwned=1">')
    expect(body).to_contain_text("<script>window.pwned=2</script>")
    assert body.locator("img, script, a[href^=javascript]").count() == 0
    assert page.locator(".message-user").last.inner_text().endswith("[link](javascript:alert(1))")
    assert page.evaluate("window.pwned") is None
    csp = page.request.get(visit.base + "/").headers["content-security-policy"]
    assert "script-src 'self'" in csp


RENDER = """(text) => {
    const box = document.createElement("div");
    box.appendChild(window.GatewayMarkdown.render(text));
    return box.innerHTML;
}"""


FORMATTING = [
    ("plain <b>tags</b> & stuff", "<p>plain &lt;b&gt;tags&lt;/b&gt; &amp; stuff</p>"),
    ("**bold** and *it* and `a<b>`", "<p><strong>bold</strong> and <em>it</em> and <code>a&lt;b&gt;</code></p>"),
    ("snake_case_name stays", "<p>snake_case_name stays</p>"),
    (
        "```js\n<script>x()</script>\n```",
        '<pre><code data-language="js">&lt;script&gt;x()&lt;/script&gt;</code></pre>',
    ),
    ("- one\n- two", "<ul><li>one</li><li>two</li></ul>"),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    ("# Title", "<h3>Title</h3>"),
    ("> quoted", "<blockquote><p>quoted</p></blockquote>"),
    ("line one\nline two", "<p>line one<br>line two</p>"),
    (
        "[docs](https://example.com/a?b=1)",
        '<p><a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow" target="_blank">docs</a></p>',
    ),
    ("[x](javascript:alert(1)) [y](data:text/html,hi)", "<p>[x](javascript:alert(1)) [y](data:text/html,hi)</p>"),
    (
        '[q](https://a.example/"onmouseover="x)',
        '<p><a href="https://a.example/&quot;onmouseover=&quot;x" rel="noopener noreferrer nofollow" target="_blank">'
        "q</a></p>",
    ),
    ("```\nstill streaming", "<pre><code>still streaming</code></pre>"),
]


def test_the_answer_formatting_is_markdown_like_and_escapes_everything_else(visit, alice):
    page = visit.sign_in("alice")

    rendered = [(text, page.evaluate(RENDER, text)) for text, _ in FORMATTING]

    assert rendered == [(text, html) for text, html in FORMATTING]


def test_the_usage_page_counts_the_request_just_made(visit, alice):
    page = visit.sign_in("alice")
    send(page, "Count me [[chunks:5]]", model="gpt-4o-mini")
    expect(last_answer(page)).to_have_attribute("data-status", "done")
    row = wait_for(lambda: Request.objects.first())
    assert row is not None

    page.get_by_role("link", name="Usage").click()
    expect(page).to_have_url(visit.base + "/usage")
    expect(page.locator("[data-figure=total_requests]")).to_have_text("1")
    expect(page.locator("[data-figure=total_cost_usd]")).to_have_text("$" + format(row.cost_usd.normalize(), "f"))
    recent = page.get_by_role("table", name="Recent requests")
    expect(recent).to_contain_text("gpt-4o-mini")
    expect(recent.locator(f"[data-request-id='{row.id}']")).to_have_count(1)
    expect(page.locator(".chart svg").first).to_be_visible()
    visit.shot("usage-light", full_page=True)


def test_staff_see_everyone_and_link_to_the_admin_detail(browser, live, alice, staff):  # noqa: F811
    mine = Request.objects.create(
        user_id="alice",
        application_id="web",
        endpoint="/llm/chat",
        model="gpt-4o-mini",
        status="success",
        total_tokens=10,
        prompt_tokens=4,
        completion_tokens=6,
        cost_usd=Decimal("0.0000042"),
        latency_ms=120,
    )
    Request.objects.create(
        user_id="bob",
        application_id="acme",
        endpoint="/api/chat",
        model="gpt-4o",
        status="error",
        error_type="provider_error",
        http_status=502,
        latency_ms=80,
    )
    for name, options in {"usage-dark": {"color_scheme": "dark"}, "usage-phone": {}}.items():
        tab = Visit(browser, live, **options)
        if name == "usage-phone":
            tab.page.set_viewport_size(PHONE)
        page = tab.sign_in("sam", "/usage")
        expect(page.locator("[data-figure=total_requests]")).to_have_text("0")  # sam made none himself
        page.get_by_label("User", exact=True).fill("")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("[data-figure=total_requests]")).to_have_text("2")
        page.get_by_label("User", exact=True).fill("alice")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("[data-figure=total_requests]")).to_have_text("1")
        link = page.get_by_role("table", name="Recent requests").locator(f"a[data-request-id='{mine.id}']")
        expect(link).to_have_attribute("href", f"/admin/chat/request/{mine.id}/change/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], f"{name}: the page is {width}px wide"
        tab.shot(name, full_page=True)
        link.click()
        expect(page).to_have_url(f"{live}/admin/chat/request/{mine.id}/change/")
        expect(page.locator("body")).to_contain_text(str(mine.id))
        tab.close()
        assert not tab.errors


def test_staff_open_an_answer_in_the_admin_from_its_request_id(visit, staff):
    page = visit.sign_in("sam")

    send(page, "Trace me", model="offline-demo")

    request_id = last_answer(page).locator(".request-id")
    expect(request_id).to_have_attribute("data-request-id", re.compile(r"^[0-9a-f-]{36}$"))
    row_id = request_id.get_attribute("data-request-id")
    request_id.click()
    expect(page).to_have_url(f"{visit.base}/admin/chat/request/{row_id}/change/")
