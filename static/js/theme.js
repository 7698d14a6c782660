// Applies the saved colour theme before the page paints, and cycles it: automatic → light → dark.
(function () {
  "use strict";
  var KEY = "gateway-theme";
  var root = document.documentElement;
  function saved() {
    try { return localStorage.getItem(KEY) || "auto"; } catch (e) { return "auto"; }
  }
  function apply(theme) {
    if (theme === "light" || theme === "dark") root.setAttribute("data-theme", theme);
    else root.removeAttribute("data-theme");
    var button = document.getElementById("theme-toggle");
    if (button) {
      var label = "Colour theme: " + (theme === "auto" ? "automatic" : theme);
      button.setAttribute("aria-label", label);
      button.title = label + " (click to change)";
    }
  }
  apply(saved());
  document.addEventListener("DOMContentLoaded", function () {
    apply(saved());
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    button.addEventListener("click", function () {
      var next = { auto: "light", light: "dark", dark: "auto" }[saved()] || "auto";
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      apply(next);
    });
  });
})();
