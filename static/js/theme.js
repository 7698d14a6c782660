// Applies the saved colour theme before the page paints, and cycles it: automatic → light → dark.
(function () {
  "use strict";
  var KEY = "gateway-theme";
  var root = document.documentElement;
  function saved() {
    try { return localStorage.getItem(KEY) || "auto"; } catch (e) { return "auto"; }
  }
  var system = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function apply(theme) {
    // "auto" follows the system, so the stylesheet holds one dark palette, keyed on data-theme alone.
    var dark = theme === "dark" || (theme === "auto" && system !== null && system.matches);
    root.setAttribute("data-theme", dark ? "dark" : "light");
    var button = document.getElementById("theme-toggle");
    if (button) {
      var label = "Colour theme: " + (theme === "auto" ? "automatic" : theme);
      button.setAttribute("aria-label", label);
      button.title = label + " (click to change)";
    }
  }
  apply(saved());
  if (system !== null && system.addEventListener) {
    system.addEventListener("change", function () { apply(saved()); });
  }
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
