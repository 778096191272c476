/* driftbridge widget bridge v1 (docs/WIDGET.md): Drift widget events -> your driftbridge.
   <script async src="https://DRIFTBRIDGE/widget.js" data-site="SITE" data-token="TOKEN"></script> */
(function () {
  "use strict";
  var VERSION = "1", GAP = 2000, MAX = 50;
  var me = document.currentScript;
  if (!me || window.__driftbridgeWidget) return;
  window.__driftbridgeWidget = VERSION;
  var ds = me.dataset, site = ds.site;
  var endpoint = new URL(me.src).origin + "/widget/events";
  var token = ds.token || window.driftbridgeToken || null;
  var collect = ds.collectContact === "true";
  var EVENTS = ["ready", "startConversation", "conversation:firstInteraction", "message:sent",
    "message", "emailCapture", "phoneCapture", "scheduling:requestMeeting",
    "scheduling:meetingBooked", "conversation:playbookFired", "conversation:playbookClicked",
    "conversation:playbookDismissed", "conversation:buttonClicked", "campaign:open",
    "campaign:dismiss", "campaign:click", "campaign:submit", "chatOpen", "chatClose",
    "gdprClicked"];
  var PRIVATE = { email: 1, phone: 1, phoneNumber: 1 };

  function rid() {
    var a = new Uint8Array(12);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function stored(store, key, make) {
    try {
      var v = store.getItem(key);
      if (!v) { v = make(); store.setItem(key, v); }
      return v;
    } catch (e) { return make(); }
  }
  // A URL's query values that hold an email (a campaign link's ?email=) are blanked too.
  function safeUrl(u) {
    if (!u) return undefined;
    try {
      var x = new URL(u), keys = [];
      if (!collect) x.searchParams.forEach(function (v, k) { if (v.indexOf("@") > 0) keys.push(k); });
      keys.forEach(function (k) { x.searchParams.set(k, "[removed]"); });
      return x.href.slice(0, 2000);
    } catch (e) { return undefined; }
  }
  var visitor = token ? token.split(".")[1] : stored(localStorage, "dbw_v", rid);
  var session = stored(sessionStorage, "dbw_s", rid);
  // The session's first touch: kept from its first page, whatever the visitor clicks next.
  var touch = JSON.parse(stored(sessionStorage, "dbw_t", function () {
    var q = new URLSearchParams(location.search), t = {};
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (k) {
      if (q.get(k)) t[k] = q.get(k).slice(0, 200);
    });
    t.landing_page = safeUrl(location.href);
    t.referrer = safeUrl(document.referrer);
    return JSON.stringify(t);
  }));

  // Emails and phone numbers stay in the browser unless the site opted in.
  function clean(v, depth) {
    if (v === null || typeof v !== "object" || depth > 6) return typeof v === "function" ? undefined : v;
    var out = Array.isArray(v) ? [] : {};
    for (var k in v) {
      if (!Object.prototype.hasOwnProperty.call(v, k) || (!collect && PRIVATE[k])) continue;
      var c = clean(v[k], depth + 1);
      if (c !== undefined) out[k] = c;
    }
    return out;
  }

  var queue = [], timer = null, last = 0, failures = 0;
  function record(type, payload) {
    var p = payload || {}, d = p.data || {};
    var conv = p.conversationId || d.conversationId;
    queue.push({
      id: rid(), type: type, ts: Date.now(),
      conversationId: typeof conv === "number" ? conv : undefined,
      page: { url: safeUrl(location.href), path: location.pathname.slice(0, 500),
        referrer: safeUrl(document.referrer) },
      touch: touch, data: clean(p, 0) || {}
    });
    schedule();
  }
  function body(events) {
    return JSON.stringify({ site: site, visitor: visitor, session: session, token: token || undefined, events: events });
  }
  // At most one request per GAP while events flow.
  function schedule() {
    if (timer || !queue.length) return;
    var wait = Math.max(250, last + GAP * (1 + Math.min(failures, 5)) - Date.now());
    timer = setTimeout(flush, wait);
  }
  function flush() {
    timer = null;
    if (!queue.length) return;
    var events = queue.splice(0, MAX);
    last = Date.now();
    fetch(endpoint, { method: "POST", keepalive: true, mode: "cors", credentials: "omit",
      headers: { "Content-Type": "application/json" }, body: body(events) })
      .then(function (r) {
        if (r.status === 429 || r.status >= 500) throw new Error("retry");
        failures = 0;
        if (!r.ok && window.console) console.warn("driftbridge widget: events refused", r.status);
      })
      .catch(function () { failures++; queue = events.concat(queue); })
      .then(schedule);
  }
  // Leaving the page: what is left goes as a beacon (text/plain needs no CORS preflight).
  function leave() {
    if (!queue.length || !navigator.sendBeacon) return;
    if (navigator.sendBeacon(endpoint, new Blob([body(queue.slice(0, MAX))], { type: "text/plain" }))) queue = queue.slice(MAX);
  }
  addEventListener("pagehide", leave);
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") leave(); });

  var tries = 0;
  (function attach() {
    var drift = window.drift;
    if (!drift || typeof drift.on !== "function") {
      if (tries++ < 100) setTimeout(attach, 100);
      return;
    }
    EVENTS.forEach(function (name) {
      drift.on(name, function (a, b) { record(name, name === "ready" ? b : a); });
    });
  })();
})();
