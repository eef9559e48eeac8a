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
