// Kanal admin pages work without JavaScript; this file only adds conveniences on top.
// Loaded with `defer` from /admin/static (the Content-Security-Policy allows no inline script).
//
// A fetch() that changes something (POST, PUT, PATCH, DELETE) must send the page's CSRF token:
//   fetch(url, { method: "POST", headers: kanalAdmin.csrfHeaders(), body: ... })
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  window.kanalAdmin = {
    csrfToken: csrfToken,
    csrfHeaders: function (extra) {
      var headers = Object.assign({}, extra || {});
      headers["X-CSRF-Token"] = csrfToken();
      return headers;
    },
  };
})();

// Issue 6: keyboard shortcuts of the review queue and the decision screen (hints are on the pages).
//   queue:    j / k  next / previous row,  Enter  open it
//   decision: a approve, r reject, i ask for info, m merge (each focuses its form's first field; the
//             admin still presses the button), j  next report in the queue, k  back
// Keys typed into a field are never shortcuts.
(function () {
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function focusForm(form) {
    var field = form.querySelector("select, input:not([type=hidden]), textarea, button");
    form.scrollIntoView({ block: "center" });
    if (field) field.focus();
  }

  function queueKeys(event, rows) {
    var current = document.querySelector("tr.queue-row.selected");
    var index = Array.prototype.indexOf.call(rows, current);
    if (event.key === "Enter" && current) {
      var link = current.querySelector("a");
      if (link) window.location.assign(link.getAttribute("href"));
      return true;
    }
    var step = event.key === "j" ? 1 : event.key === "k" ? -1 : 0;
    if (!step) return false;
    var next = rows[Math.min(rows.length - 1, Math.max(0, index + step))];
    if (current) current.classList.remove("selected");
    next.classList.add("selected");
    next.setAttribute("aria-selected", "true");
    next.scrollIntoView({ block: "nearest" });
    var anchor = next.querySelector("a");
    if (anchor) anchor.focus();
    return true;
  }

  function decisionKeys(event) {
    var form = document.querySelector('form[data-shortcut="' + event.key + '"]');
    if (form) {
      focusForm(form);
      return true;
    }
    if (event.key === "j") {
      var next = document.querySelector('a[data-key="next"]');
      window.location.assign(next ? next.getAttribute("href") : "/admin/queue");
      return true;
    }
    if (event.key === "k") {
      window.history.back();
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var rows = document.querySelectorAll("tr.queue-row");
    var handled = rows.length ? queueKeys(event, rows) : decisionKeys(event);
    if (handled) event.preventDefault();
  });
})();
