// The chat page: a conversation kept in the page, answers streamed from POST /llm/chat (Server-Sent Events).
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("chat-config").textContent);
  var STORE = "gateway-chat:" + config.user;
  var PREFS = "gateway-chat-prefs:" + config.user;

  var $ = function (id) { return document.getElementById(id); };
  var modelSelect = $("model");
  var modelPrice = $("model-price");
  var applicationInput = $("application");
  var list = $("messages");
  var empty = $("empty");
  var conversation = $("conversation");
  var composer = $("composer");
  var prompt = $("prompt");
  var sendButton = $("send");
  var stopButton = $("stop");
  var connection = $("connection");

  var turns = [];          // {id, user, answer, model, status: done|stopped|error|streaming, meta, error}
  var models = {};         // name -> {provider, input, output}
  var active = null;       // {turn, controller, node, started}

  // --- Storage: the conversation and the draft survive a reload of this tab ---------------------------

  function load(key, fallback) {
    try {
      var raw = sessionStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function save() {
    try {
      sessionStorage.setItem(STORE, JSON.stringify({
        turns: turns.filter(function (t) { return t.status !== "streaming"; }),
        draft: prompt.value,
      }));
      localStorage.setItem(PREFS, JSON.stringify({ model: modelSelect.value, application: applicationInput.value }));
    } catch (e) { /* storage full or disabled: the page still works, it just forgets on reload */ }
  }

  // The messages sent with the next question: finished turns, and stopped ones that produced text.
  function history() {
    var messages = [];
    turns.forEach(function (t) {
      if (t.status === "done" || (t.status === "stopped" && t.answer)) {
        messages.push({ role: "user", content: t.user });
        messages.push({ role: "assistant", content: t.answer });
      }
    });
    return messages;
  }

  // --- Formatting ---------------------------------------------------------------------------------

  function money(value) {
    var n = Number(value);
    if (!isFinite(n)) return "–";
    if (n === 0) return "$0";
    if (n >= 0.01) return "$" + n.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
    return "$" + n.toFixed(10).replace(/0+$/, "");
  }

  function perMillion(value) {
    if (value === null || value === undefined) return "price unknown";
    var n = Number(value);
    return n === 0 ? "free" : "$" + n.toFixed(2).replace(/\.00$/, "");
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
  }

  function text(tag, value, className) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = value;
    return node;
  }

  // --- Models and connection status ----------------------------------------------------------------

  function loadModels() {
    return fetch(config.models_url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (body) {
        var prefs = readPrefs();
        modelSelect.textContent = "";
        body.providers.forEach(function (group) {
          var chatModels = group.models.filter(function (m) { return m.mode === "chat"; });
          if (!chatModels.length) return;
          var optgroup = document.createElement("optgroup");
          optgroup.label = group.provider;
          chatModels.forEach(function (m) {
            models[m.name] = { provider: group.provider, input: m.input_cost_per_million, output: m.output_cost_per_million };
            var price = m.input_cost_per_million === null ? "price unknown"
              : perMillion(m.input_cost_per_million) + " in · " + perMillion(m.output_cost_per_million) + " out";
            var option = new Option(m.name + " — " + price, m.name);
            optgroup.appendChild(option);
          });
          modelSelect.appendChild(optgroup);
        });
        var wanted = prefs.model && models[prefs.model] ? prefs.model : body.default;
        if (wanted && models[wanted]) modelSelect.value = wanted;
        showPrice();
      })
      .catch(function () {
        modelSelect.textContent = "";
        modelSelect.appendChild(new Option("Models unavailable — reload to retry", ""));
        modelPrice.textContent = "";
      });
  }

  function readPrefs() {
    try { return JSON.parse(localStorage.getItem(PREFS) || "{}"); } catch (e) { return {}; }
  }

  function showPrice() {
    var m = models[modelSelect.value];
    if (!m) { modelPrice.textContent = ""; return; }
    modelPrice.textContent = m.input === null ? m.provider + " · price unknown"
      : m.provider + " · per 1M tokens: " + perMillion(m.input) + " input, " + perMillion(m.output) + " output";
  }

  function setConnection(state, label, detail) {
    connection.setAttribute("data-state", state);
    connection.querySelector(".status-text").textContent = label;
    connection.title = detail;
    connection.setAttribute("aria-label", "Connection: " + detail);
  }

  function checkHealth() {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, 5000);
    fetch(config.health_url, { cache: "no-store", signal: controller.signal })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          var db = body.database === "ok" ? "up" : "down";
          var cache = body.cache === "ok" ? "up" : "down";
          var detail = "Gateway up · database " + db + " · cache " + cache + (body.version ? " · v" + body.version : "");
          if (r.ok) setConnection("ok", "Gateway and database up", detail);
          else setConnection("degraded", db === "down" ? "Database down" : "Cache down", detail);
        });
      })
      .catch(function () {
        setConnection("down", "Gateway unreachable", "The gateway does not answer; check your connection.");
      })
      .then(function () { clearTimeout(timer); });
  }

  // --- Rendering the conversation ------------------------------------------------------------------

  function renderTurn(turn) {
    var item = document.createElement("li");
    item.className = "turn";
    item.setAttribute("data-turn", turn.id);

    var user = document.createElement("div");
    user.className = "message message-user";
    user.appendChild(text("span", "You", "visually-hidden"));
    user.appendChild(text("div", turn.user, "message-text"));
    item.appendChild(user);

    var answer = document.createElement("div");
    answer.className = "message message-assistant";
    answer.appendChild(text("span", "Answer from " + (turn.model || "the default model"), "visually-hidden"));
    var body = document.createElement("div");
    body.className = "message-body";
    answer.appendChild(body);
    var meta = document.createElement("div");
    meta.className = "meta";
    answer.appendChild(meta);
    item.appendChild(answer);
    updateTurn(item, turn);
    return item;
  }

  function updateTurn(item, turn) {
    var answer = item.querySelector(".message-assistant");
    var body = answer.querySelector(".message-body");
    var meta = answer.querySelector(".meta");
    answer.setAttribute("data-status", turn.status);
    answer.setAttribute("aria-busy", turn.status === "streaming" ? "true" : "false");
    body.textContent = "";
    if (turn.answer) body.appendChild(window.GatewayMarkdown.render(turn.answer));
    if (turn.status === "streaming" && !turn.answer) body.appendChild(typing());
    else if (turn.status === "streaming") body.appendChild(text("span", "", "cursor"));
    meta.textContent = "";
    if (turn.status === "done" && turn.meta) renderMeta(meta, turn);
    if (turn.status === "stopped") {
      meta.appendChild(text("span", "Stopped after " + duration(turn.elapsed_ms), "stopped"));
      meta.appendChild(text("span", turn.model, "model"));
      if (turn.request_id) requestId(meta, turn.request_id);
    }
    if (turn.status === "error" && turn.error) body.appendChild(errorBox(turn));
  }

  function typing() {
    var dots = document.createElement("span");
    dots.className = "typing";
    dots.setAttribute("aria-label", "Waiting for the first token");
    for (var i = 0; i < 3; i++) dots.appendChild(document.createElement("span"));
    return dots;
  }

  function renderMeta(meta, turn) {
    var m = turn.meta;
    var usage = m.usage || {};
    var parts = [
      ["model", m.model || turn.model, "Model"],
      ["latency", duration(m.duration_ms), "Latency"],
      ["ttft", "first token " + duration(m.ttft_ms), "Time to first token"],
      ["tokens", (usage.prompt_tokens || 0) + " in · " + (usage.completion_tokens || 0) + " out · " +
        (usage.total_tokens || 0) + " tokens", "Tokens: prompt, completion, total"],
      ["cost", money(m.cost_usd), "Cost in US dollars"],
    ];
    parts.forEach(function (p) {
      var span = text("span", p[1], p[0]);
      span.title = p[2];
      meta.appendChild(span);
    });
    if (m.request_id) requestId(meta, String(m.request_id));
  }

  // The request id, linked to its admin page for staff, with a button that copies it.
  function requestId(meta, value) {
    var id = document.createElement(config.admin_request_url ? "a" : "span");
    id.className = "request-id";
    id.textContent = "id " + value.slice(0, 8);
    id.title = "Request id " + value + (config.admin_request_url ? " (open in the admin)" : "");
    id.setAttribute("data-request-id", value);
    if (config.admin_request_url) id.href = config.admin_request_url.replace(config.nil_id, encodeURIComponent(value));
    meta.appendChild(id);
    var copy = text("button", "Copy id", "link-button copy");
    copy.type = "button";
    copy.setAttribute("aria-label", "Copy request id " + value);
    copy.addEventListener("click", function () {
      var done = function () { copy.textContent = "Copied"; setTimeout(function () { copy.textContent = "Copy id"; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(value).then(done, function () {});
    });
    meta.appendChild(copy);
  }

  function errorBox(turn) {
    var box = document.createElement("div");
    box.className = "notice notice-error";
    box.setAttribute("role", "alert");
    box.appendChild(text("strong", turn.error.title));
    box.appendChild(text("p", turn.error.message));
    if (turn.error.detail && turn.error.detail !== turn.error.message) box.appendChild(text("p", turn.error.detail, "muted detail"));
    var actions = document.createElement("p");
    actions.className = "actions";
    if (turn.error.login) {
      var login = text("a", "Sign in again (opens a new tab)", "button");
      login.href = config.login_url;
      login.target = "_blank";
      login.rel = "noopener";
      actions.appendChild(login);
    }
    if (turn.error.reload) {
      var reload = text("button", "Reload the page", "button");
      reload.type = "button";
      reload.addEventListener("click", function () { save(); location.reload(); });
      actions.appendChild(reload);
    }
    var retry = text("button", "Try again", "button primary");
    retry.type = "button";
    retry.addEventListener("click", function () { retryTurn(turn); });
    actions.appendChild(retry);
    box.appendChild(actions);
    return box;
  }

  function renderAll() {
    list.textContent = "";
    turns.forEach(function (t) { list.appendChild(renderTurn(t)); });
    empty.hidden = turns.length > 0;
  }

  function scrollToEnd(force) {
    var nearEnd = conversation.scrollHeight - conversation.scrollTop - conversation.clientHeight < 120;
    if (force || nearEnd) conversation.scrollTop = conversation.scrollHeight;
  }

  // --- Errors: a clear sentence per case, from the gateway's one error shape -----------------------

  function describe(status, error, retryAfter) {
    var code = (error && error.code) || "";
    var message = (error && error.message) || "";
    if (status === 0) return { title: "The gateway cannot be reached", message: "Check your connection and try again. Your message is back in the box below.", detail: message };
    if (status === 401) return { title: "You are signed out", message: "Your session has ended. Sign in again in a new tab, then send your message again: it is kept below.", detail: message, login: true };
    if (code === "csrf_failed") return { title: "This page is out of date", message: "Reload the page and send again; your message and the conversation are kept.", detail: message, reload: true };
    if (code === "budget_exceeded") return { title: "Budget exceeded", message: "The spending limit for this period has been reached, so the request was not sent. Ask an administrator to raise the budget, or wait for the next period.", detail: message };
    if (status === 429) return { title: "Too many requests", message: "A rate limit was reached" + (retryAfter ? "; try again in " + retryAfter + " s." : "; wait a moment and try again."), detail: message };
    if (status === 504 || code === "provider_timeout") return { title: "The provider timed out", message: "The model took too long to answer. Try again, or pick another model.", detail: message };
    if (status === 502 || (error && error.type === "provider_error")) return { title: "The provider is down", message: "The model's provider returned an error. Try again in a moment, or pick another model.", detail: message };
    if (status === 503) return { title: "The gateway is unavailable", message: "Its database does not answer; try again shortly.", detail: message };
    if (status === 400) return { title: "The request was refused", message: message || "The gateway refused the request.", detail: error && error.param ? "Field: " + error.param : "" };
    if (status === 403) return { title: "Not allowed", message: message || "You may not make this request." };
    return { title: "Something went wrong", message: "The gateway answered with status " + status + ". Try again.", detail: message };
  }

  // --- Sending and streaming -----------------------------------------------------------------------

  // The current token from the cookie: signing in again in another tab replaces it, and this tab follows.
  function csrfToken() {
    var prefix = config.csrf_cookie + "=";
    var found = document.cookie.split(/;\s*/).filter(function (c) { return c.indexOf(prefix) === 0; })[0];
    return found ? decodeURIComponent(found.slice(prefix.length)) : config.csrf_token;
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    stopButton.hidden = !busy;
    sendButton.hidden = busy;
    modelSelect.disabled = busy;
    if (busy) stopButton.focus({ preventScroll: true });
  }

  function retryTurn(turn) {
    if (active) return;
    turns = turns.filter(function (t) { return t !== turn; });
    renderAll();
    send(turn.user);
  }

  function fail(turn, item, status, error, retryAfter) {
    turn.status = "error";
    turn.error = describe(status, error, retryAfter);
    // Nothing typed is lost: the question goes back into the box unless something new is being written.
    if (!prompt.value.trim()) prompt.value = turn.user;
    updateTurn(item, turn);
    scrollToEnd(true);
  }

  function send(textToSend) {
    var question = (textToSend !== undefined ? textToSend : prompt.value).trim();
    if (!question || active) return;
    var model = modelSelect.value || null;
    var turn = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), user: question, answer: "",
      model: model || "", status: "streaming", meta: null, error: null };
    var messages = history().concat([{ role: "user", content: question }]);
    turns.push(turn);
    if (textToSend === undefined) prompt.value = "";
    empty.hidden = true;
    var item = renderTurn(turn);
    list.appendChild(item);
    scrollToEnd(true);
    save();

    var controller = new AbortController();
    var started = performance.now();
    active = { turn: turn, controller: controller };
    setBusy(true);

    var body = { messages: messages, stream: true };
    if (model) body.model = model;
    var application = applicationInput.value.trim();
    if (application) body.metadata = { application: application };

    var pending = false;
    function paint() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; updateTurn(item, turn); scrollToEnd(false); });
    }

    fetch(config.chat_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
      signal: controller.signal,
    })
      .then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return {}; }).then(function (data) {
            fail(turn, item, response.status, data.error, response.headers.get("Retry-After"));
          });
        }
        // Named before the first token where the gateway sends it, so a stopped answer can still be traced.
        turn.request_id = response.headers.get("X-Request-Id") || null;
        return readEvents(response, function (event) {
          if (event.type === "delta") {
            turn.answer += event.content || "";
            paint();
          } else if (event.type === "done") {
            turn.status = "done";
            turn.meta = event;
            if (typeof event.content === "string" && event.content.length >= turn.answer.length) turn.answer = event.content;
          } else if (event.type === "error") {
            var e = event.error || {};
            var status = e.type === "provider_error" ? (e.code === "provider_timeout" ? 504 : 502) : 500;
            if (e.code === "budget_exceeded" || e.type === "rate_limit_error") status = 429;
            fail(turn, item, status, e);
          }
        }).then(function () {
          if (turn.status === "streaming") {
            fail(turn, item, 502, { message: "The stream ended before the answer was complete." });
          }
        });
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") {
          turn.status = "stopped";
          turn.elapsed_ms = performance.now() - started;
        } else if (turn.status === "streaming") {
          fail(turn, item, 0, { message: String((err && err.message) || err) });
        }
      })
      .then(function () {
        active = null;
        updateTurn(item, turn);
        setBusy(false);
        save();
        scrollToEnd(false);
        prompt.focus({ preventScroll: true });
      });
  }

  // Reads `data: {...}` Server-Sent Events from a fetch response until `[DONE]` or the end of the body.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var boundary;
        while ((boundary = buffer.indexOf("\n\n")) !== -1) {
          var block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          var data = block.split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
            .map(function (l) { return l.slice(5).replace(/^ /, ""); }).join("\n");
          if (!data) continue;
          if (data === "[DONE]") return;
          try { onEvent(JSON.parse(data)); } catch (e) { /* a malformed event is skipped, not fatal */ }
        }
        return pump();
      });
    }
    return pump();
  }

  function stop() {
    if (active) active.controller.abort();
  }

  // --- Wiring --------------------------------------------------------------------------------------

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });
  prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  prompt.addEventListener("input", save);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && active) {
      event.preventDefault();
      stop();
    }
  });
  stopButton.addEventListener("click", stop);
  modelSelect.addEventListener("change", function () { showPrice(); save(); });
  applicationInput.addEventListener("change", save);
  $("new-chat").addEventListener("click", function () {
    if (active) stop();
    turns = [];
    renderAll();
    save();
    prompt.focus();
  });

  var stored = load(STORE, { turns: [], draft: "" });
  turns = (stored.turns || []).filter(function (t) { return t && typeof t.user === "string"; });
  prompt.value = stored.draft || "";
  applicationInput.value = readPrefs().application || "";
  renderAll();
  scrollToEnd(true);
  loadModels();
  checkHealth();
  setInterval(checkHealth, 15000);
  prompt.focus({ preventScroll: true });
})();
