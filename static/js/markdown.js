// A small markdown-like renderer that builds DOM nodes, never HTML strings: whatever a model or a
// person writes ends up as text, so no markup or script from an answer can ever run.
(function () {
  "use strict";

  var SAFE_LINK = /^(https?:\/\/|mailto:)/i;

  function el(tag, className) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  // Inline spans: `code`, **bold**, *italic* or _italic_, [text](https://…). Everything else is text.
  var INLINE_SOURCE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*\n][\s\S]*?)\*\*|__([^_\n][\s\S]*?)__|\*([^*\s][^*\n]*?)\*|\b_([^_\s][^_\n]*?)_\b|\[([^\]\n]+)\]\(([^)\s]+)\)/g;

  function inline(parent, text) {
    var INLINE = new RegExp(INLINE_SOURCE.source, "g");  // one per call: bold and links recurse
    var last = 0;
    var match;
    while ((match = INLINE.exec(text)) !== null) {
      if (match.index > last) appendLines(parent, text.slice(last, match.index));
      if (match[1]) {
        var code = el("code");
        code.textContent = match[2].replace(/^ (.*) $/, "$1");
        parent.appendChild(code);
      } else if (match[3] !== undefined || match[4] !== undefined) {
        var strong = el("strong");
        inline(strong, match[3] !== undefined ? match[3] : match[4]);
        parent.appendChild(strong);
      } else if (match[5] !== undefined || match[6] !== undefined) {
        var em = el("em");
        inline(em, match[5] !== undefined ? match[5] : match[6]);
        parent.appendChild(em);
      } else if (match[7] !== undefined) {
        if (SAFE_LINK.test(match[8])) {
          var a = el("a");
          a.href = match[8];
          a.rel = "noopener noreferrer nofollow";
          a.target = "_blank";
          inline(a, match[7]);
          parent.appendChild(a);
        } else {
          appendLines(parent, match[0]);  // javascript:, data: and the like stay plain text
        }
      }
      last = INLINE.lastIndex;
    }
    if (last < text.length) appendLines(parent, text.slice(last));
  }

  function appendLines(parent, text) {
    var lines = text.split("\n");
    for (var i = 0; i < lines.length; i++) {
      if (i > 0) parent.appendChild(el("br"));
      if (lines[i]) parent.appendChild(document.createTextNode(lines[i]));
    }
  }

  var FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
  var HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  var BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  var NUMBER = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
  var QUOTE = /^\s{0,3}>\s?(.*)$/;
  var RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

  function render(text) {
    var root = document.createDocumentFragment();
    var lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var m;
      if (!line.trim()) {
        i++;
      } else if ((m = FENCE.exec(line))) {
        var fence = m[1];
        var body = [];
        i++;
        // An unclosed fence (an answer still streaming) runs to the end.
        while (i < lines.length && lines[i].trim().indexOf(fence) !== 0) body.push(lines[i++]);
        i++;
        var pre = el("pre");
        var code = el("code");
        if (m[2]) code.setAttribute("data-language", m[2]);
        code.textContent = body.join("\n");
        pre.appendChild(code);
        root.appendChild(pre);
      } else if ((m = HEADING.exec(line))) {
        var heading = el("h" + Math.min(6, m[1].length + 2));  // answers never outrank the page's own headings
        inline(heading, m[2]);
        root.appendChild(heading);
        i++;
      } else if (RULE.test(line)) {
        root.appendChild(el("hr"));
        i++;
      } else if (QUOTE.test(line)) {
        var quoted = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) { quoted.push(m[1]); i++; }
        var quote = el("blockquote");
        quote.appendChild(render(quoted.join("\n")));
        root.appendChild(quote);
      } else if (BULLET.test(line) || NUMBER.test(line)) {
        var ordered = !BULLET.test(line);
        var pattern = ordered ? NUMBER : BULLET;
        var list = el(ordered ? "ol" : "ul");
        if (ordered) {
          var start = parseInt(NUMBER.exec(line)[1], 10);
          if (start !== 1) list.start = start;
        }
        var item = null;
        while (i < lines.length) {
          var current = lines[i];
          var hit = pattern.exec(current);
          if (hit) {
            item = el("li");
            inline(item, ordered ? hit[2] : hit[1]);
            list.appendChild(item);
          } else if (item && current.trim() && /^\s+/.test(current)) {
            item.appendChild(el("br"));  // an indented continuation line
            inline(item, current.trim());
          } else {
            break;
          }
          i++;
        }
        root.appendChild(list);
      } else {
        var para = [];
        while (
          i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
          !BULLET.test(lines[i]) && !NUMBER.test(lines[i]) && !QUOTE.test(lines[i]) && !RULE.test(lines[i])
        ) {
          para.push(lines[i]);
          i++;
        }
        var p = el("p");
        inline(p, para.join("\n"));
        root.appendChild(p);
      }
    }
    return root;
  }

  window.GatewayMarkdown = { render: render };
})();
