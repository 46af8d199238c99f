/* microadjust tracker (source: microadjust_cms/static_src/tracker.js; `make tracker` minifies it
   into static/microadjust_cms/js/tracker.js). Settings: #microadjust-config
   ({% microadjust_tracker %}). Observers and passive listeners only: nothing runs on each
   scroll event. */
(function (w, d) {
  "use strict";
  var el = d.getElementById("microadjust-config");
  if (!el || !w.IntersectionObserver) return;
  var c = JSON.parse(el.textContent);
  var nav = w.navigator, KEY = "microadjust:pending", queue = [], blocks = [], timer = 0, swaps = 0;
  var inflight = {};  // event → when it was sent, unanswered: kept in storage, not sent twice

  function blocked() {
    return c.dnt && (nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true);
  }
  function consented() {
    return !c.consent || (";" + d.cookie.replace(/ /g, "")).indexOf(";" + c.consentCookie + "=1") >= 0;
  }
  function allowed() { return !blocked() && consented(); }

  /* A block event: the block, its variant, where it stood, what it holds (content type, tags) and,
     auto-optimized, the context and goal its variant was chosen for (opt). */
  function blockEvent(type, b, ev) {
    ev = ev || {};
    ev.type = type; ev.block = b.id; ev.variant = b.variant; ev.pos = b.pos;
    if (b.kind) ev.kind = b.kind;
    if (b.tags) ev.tags = b.tags;
    if (b.opt) ev.opt = b.opt;
    return ev;
  }

  function push(ev) {
    if (!allowed()) return;
    ev.t = Date.now();
    if (c.page) ev.page = c.page;
    ev.path = c.path;
    if (c.seg) ev.seg = c.seg;
    queue.push(ev);
    if (queue.length >= 50) flush(false);
  }

  function stored() {
    try { return JSON.parse(w.localStorage.getItem(KEY) || "[]"); } catch (e) { return []; }
  }
  function store(events) {
    try {
      if (events.length) w.localStorage.setItem(KEY, JSON.stringify(events.slice(-500)));
      else w.localStorage.removeItem(KEY);
    } catch (e) { /* storage full or disabled: the batch is lost, the page is not */ }
  }

  function send(events, leaving) {
    var body = JSON.stringify({v: 1, events: events});
    if (leaving && nav.sendBeacon && nav.sendBeacon(c.endpoint, new Blob([body], {type: "application/json"}))) {
      return;
    }
    store(stored().concat(events));  // kept until the server says it has them
    var keys = events.map(JSON.stringify);
    keys.forEach(function (k) { inflight[k] = Date.now(); });
    function settled() { keys.forEach(function (k) { delete inflight[k]; }); }
    return w.fetch(c.endpoint, {method: "POST", body: body, keepalive: true, credentials: "same-origin",
                                headers: {"Content-Type": "application/json"}})
      .then(function (r) {
        settled();
        // Stored, or refused for good (4xx but 429): not worth resending.
        if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429)) forget(events);
      }, settled);  // offline: retried on the next flush
  }
  function forget(events) {
    var sent = {};
    events.forEach(function (e) { sent[JSON.stringify(e)] = 1; });
    store(stored().filter(function (e) { return !sent[JSON.stringify(e)]; }));
  }

  function flush(leaving) {
    collectDwell();
    var events = queue.splice(0);
    if (!leaving) {  // retry what an earlier page or flush could not deliver, unless in flight
      // A request unanswered for a minute (no fetch timeout) is given up on: sent again.
      var all = stored(), busy = function (e) { return Date.now() - (inflight[JSON.stringify(e)] || 0) < 6e4; };
      store(all.filter(busy));
      events = all.filter(function (e) { return !busy(e); }).concat(events);
    }
    var sent = [];
    if (events.length && allowed()) {
      for (var i = 0; i < events.length; i += 100) sent.push(send(events.slice(i, i + 100), leaving));
    }
    return Promise.all(sent);
  }

  /* Triggers: ask the fragment API for this block's next variant (the server decides, from the
     block's trigger settings and the profile the events just updated) and swap it in place; at
     most c.swapCap swaps a page view. */
  function swap(node, reason) {
    var b = node._ma;
    if (swaps >= c.swapCap || !c.page || !node.isConnected) return;
    swaps++;
    flush(false).then(function () {
      return w.fetch(c.fragment + "?page=" + c.page + "&block=" + encodeURIComponent(b.id) +
                     "&reason=" + reason + "&exclude=" + encodeURIComponent(b.variant),
                     {credentials: "same-origin"});
    }).then(function (r) { return r.ok && r.json(); }).then(function (data) {
      if (!data || data.variant === b.variant || !node.isConnected) return;
      var t = d.createElement("template");
      t.innerHTML = data.html;
      var fresh = t.content.firstElementChild;
      if (!fresh) return;
      io.unobserve(node);
      if (b.since) { b.dwell += Date.now() - b.since; b.since = 0; }
      fresh.setAttribute("data-ma-swapped", reason);
      node.replaceWith(fresh);
      watch();
      d.dispatchEvent(new CustomEvent("microadjust:swap", {detail: {block: b.id, from: b.variant, to: data.variant, reason: reason}}));
    })["catch"](function () { /* the block stays as it is */ });
  }

  /* Impression: half visible for c.impressionMs. Dwell: visible, tab too. Abandon: scrolled
     off the top unclicked with little dwell. */
  function visibleMs(b) { return b.dwell + (b.since ? Date.now() - b.since : 0); }
  function collectDwell() {
    blocks.forEach(function (b) {
      var ms = visibleMs(b);
      if (b.since) b.since = Date.now();
      b.dwell = 0;
      if (ms >= 100) push(blockEvent("dwell", b, {value: Math.round(ms)}));
      b.total += ms;
    });
  }
  var io = new w.IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      var b = entry.target._ma;
      var half = entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= w.innerHeight * 0.5;
      if (entry.isIntersecting && d.visibilityState === "visible") {
        if (!b.since) b.since = Date.now();
      } else if (b.since) {
        b.dwell += Date.now() - b.since;
        b.since = 0;
      }
      if (half && !b.seen && !b.pending) {
        b.pending = w.setTimeout(function () {
          b.seen = true;
          push(blockEvent("impression", b));
        }, c.impressionMs);
      } else if (!half && b.pending && !b.seen) {
        w.clearTimeout(b.pending);
        b.pending = 0;
      }
      if (!entry.isIntersecting && b.seen && !b.clicked && !b.abandoned &&
          entry.boundingClientRect.bottom <= 0 && b.total + visibleMs(b) < c.abandonMs) {
        b.abandoned = true;
        push(blockEvent("abandon", b, {value: Math.round(b.total + visibleMs(b))}));
        d.dispatchEvent(new CustomEvent("microadjust:abandon", {detail: {block: b.id, variant: b.variant}}));
        if (entry.target.hasAttribute("data-ma-abandon")) swap(entry.target, "abandon");
      }
    });
  }, {threshold: [0, 0.5]});

  function watch() {
    var found = d.querySelectorAll("[data-ma-block]");
    for (var i = 0; i < found.length; i++) {
      var node = found[i];
      if (node._ma) continue;
      /* Position: data-ma-pos (a RankedBlock's item), else the index among tracked blocks. */
      var pos = parseInt(node.getAttribute("data-ma-pos"), 10);
      node._ma = {id: node.getAttribute("data-ma-block"), variant: node.getAttribute("data-ma-variant"),
                  pos: pos >= 0 && pos < 1e4 ? pos : Math.min(i, 9999),
                  kind: node.getAttribute("data-ma-kind"), tags: node.getAttribute("data-ma-tags"),
                  opt: node.getAttribute("data-ma-opt"),
                  dwell: 0, total: 0, since: 0};
      blocks.push(node._ma);
      io.observe(node);
      var reveal = +node.getAttribute("data-ma-reveal");
      if (reveal && !node.hasAttribute("data-ma-swapped")) w.setTimeout(swap, reveal * 1000, node, "timer");
    }
  }

  /* Scroll depth: observed markers at 25/50/75/90/100% of the page. */
  function depthMarkers() {
    var height = d.documentElement.scrollHeight, seen = {};
    var depth = new w.IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var v = entry.target._depth;
        if (entry.isIntersecting && !seen[v]) {
          seen[v] = 1;
          push({type: "scroll", value: v});
          depth.unobserve(entry.target);
        }
      });
    });
    [25, 50, 75, 90, 100].forEach(function (v) {
      var m = d.createElement("div");
      m._depth = v;
      m.setAttribute("aria-hidden", "true");
      m.style.cssText = "position:absolute;left:0;width:1px;height:1px;pointer-events:none;top:" +
        Math.max(0, Math.min(height - 1, Math.round(height * v / 100) - 1)) + "px";
      d.body.appendChild(m);
      depth.observe(m);
    });
  }

  function label(node) { return (node.getAttribute("aria-label") || node.textContent || "").trim().slice(0, 100); }
  d.addEventListener("click", function (e) {
    var target = e.target.closest && e.target.closest("a,button");
    if (!target) return;
    var host = target.closest("[data-ma-block]");
    if (host && host._ma) {
      host._ma.clicked = true;
      var name = label(target);
      push(blockEvent("click", host._ma, name ? {name: name} : 0));
    }
    var goal = target.closest("[data-ma-goal]");
    if (goal && goal.tagName !== "FORM") api.goal(goal.getAttribute("data-ma-goal"), host && host._ma);
  }, {passive: true, capture: true});
  d.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.getAttribute && form.getAttribute("data-ma-goal")) {
      var host = form.closest("[data-ma-block]");
      api.goal(form.getAttribute("data-ma-goal"), host && host._ma);
      flush(true);
    }
  }, {passive: true, capture: true});

  d.addEventListener("visibilitychange", function () {
    blocks.forEach(function (b) {
      if (d.visibilityState !== "visible" && b.since) { b.dwell += Date.now() - b.since; b.since = 0; }
    });
    if (d.visibilityState === "hidden") flush(true);
  }, {passive: true});
  w.addEventListener("pagehide", function () { flush(true); }, {passive: true});

  var api = w.microadjust = {
    goal: function (name, block) {
      var ev = {name: String(name).slice(0, 100)};
      push(block ? blockEvent("conversion", block, ev) : (ev.type = "conversion", ev));
    },
    consent: function (yes) {
      d.cookie = c.consentCookie + "=" + (yes ? "1" : "0") + ";path=/;max-age=" + (yes ? 31536000 : 0) + ";SameSite=Lax";
      if (!yes) { queue.length = 0; store([]); }
    },
    flush: function () { return flush(false); },
    rescan: watch
  };

  function start() {
    var ref = "";
    try { var u = new URL(d.referrer); if (u.origin === w.location.origin) ref = u.pathname.slice(0, 200); } catch (e) { /* none */ }
    var ev = {type: "pageview"};
    if (ref) ev.previous = ref;
    push(ev);
    watch();
    depthMarkers();
    timer = w.setInterval(function () { if (queue.length || stored().length) flush(false); }, c.flushMs);
  }
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start); else start();
})(window, document);
