// The usage page's charts: inline SVG bars drawn from the figures the server put in the page.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("usage-chart").textContent);
  var points = data.points || [];

  function node(tag, attrs, parent) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(el);
    return el;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    var exp = Math.pow(10, Math.floor(Math.log10(value)));
    var f = value / exp;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
  }

  function money(n) {
    if (n === 0) return "$0";
    if (n >= 0.01) return "$" + n.toFixed(2).replace(/\.00$/, "");
    var places = Math.min(10, 1 - Math.floor(Math.log10(n)));  // two significant digits, never 5e-7
    return "$" + n.toFixed(places).replace(/\.?0+$/, "");
  }

  function count(n) {
    if (n !== Math.round(n)) return null;
    return n >= 10000 ? Math.round(n / 1000) + "k" : String(n);
  }

  // series: [{key, cls}] stacked from the bottom; value(point, key) gives a bar's height.
  function draw(container, series, format, describe) {
    container.textContent = "";
    var total = points.reduce(function (sum, p) {
      return sum + series.reduce(function (s, k) { return s + p[k.key]; }, 0);
    }, 0);
    if (!points.length || total === 0) {
      var empty = document.createElement("p");
      empty.className = "chart-empty";
      empty.textContent = "No requests in this period.";
      container.appendChild(empty);
      return;
    }
    var max = niceMax(Math.max.apply(null, points.map(function (p) {
      return series.reduce(function (s, k) { return s + p[k.key]; }, 0);
    })));
    // Only ticks that read well: no half request on a count axis.
    var ticks = [0, 0.5, 1].filter(function (f) { return format(max * f) !== null; });
    var longest = Math.max.apply(null, ticks.map(function (f) { return format(max * f).length; }));
    var width = Math.max(260, container.clientWidth || 520);
    var height = 200;
    var pad = { top: 10, right: 8, bottom: 24, left: 12 + longest * 6.5 };
    var innerW = width - pad.left - pad.right;
    var innerH = height - pad.top - pad.bottom;
    var svg = node("svg", {
      class: "chart-svg", width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": describe(total),
    });
    var grid = node("g", { class: "grid" }, svg);
    var axis = node("g", { class: "axis" }, svg);
    ticks.forEach(function (f) {
      var y = pad.top + innerH - f * innerH;
      node("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y }, grid);
      var label = node("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end" }, axis);
      label.textContent = format(max * f);
    });
    var step = innerW / points.length;
    var barW = Math.max(1, Math.min(36, step * 0.72));
    var every = Math.ceil(points.length / Math.max(1, Math.floor(innerW / 56)));
    points.forEach(function (p, i) {
      var x = pad.left + i * step + (step - barW) / 2;
      var group = node("g", { class: "bucket" }, svg);
      var title = node("title", {}, group);
      title.textContent = p.title + ": " + series.map(function (k) { return k.describe(p); }).join(", ");
      var base = pad.top + innerH;
      series.forEach(function (k) {
        var h = (p[k.key] / max) * innerH;
        if (h <= 0) return;
        node("rect", { class: k.cls, x: x, y: base - h, width: barW, height: Math.max(h, 1), rx: Math.min(3, barW / 3) }, group);
        base -= h;
      });
      // A full-height transparent target so small bars are easy to point at.
      node("rect", { x: pad.left + i * step, y: pad.top, width: step, height: innerH, fill: "transparent" }, group);
      if (i % every === 0) {
        var label = node("text", { x: pad.left + i * step + step / 2, y: height - 6, "text-anchor": "middle" }, axis);
        label.textContent = p.label;
      }
    });
    container.appendChild(svg);
  }

  function render() {
    document.querySelectorAll("[data-chart]").forEach(function (container) {
      if (container.getAttribute("data-chart") === "requests") {
        points.forEach(function (p) { p.ok = p.requests - p.errors; });
        draw(container, [
          { key: "ok", cls: "bar", describe: function (p) { return p.requests + " requests"; } },
          { key: "errors", cls: "bar bar-error", describe: function (p) { return p.errors + " errors"; } },
        ], count, function (total) { return "Requests per " + data.interval + ": " + total + " in all"; });
      } else {
        draw(container, [
          { key: "cost", cls: "bar bar-cost", describe: function (p) { return p.cost_text; } },
        ], money, function () { return "Cost per " + data.interval; });
      }
    });
  }

  document.querySelectorAll(".share[data-share]").forEach(function (bar) {
    bar.style.width = Math.max(0, Math.min(100, Number(bar.getAttribute("data-share")))) + "%";
  });

  render();
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(render, 150);
  });
})();
