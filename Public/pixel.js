/*! Candor pixel: privacy-first analytics. No cookies ever; device storage only after consent. */
(function (w, d, n) {
  'use strict';
  var me = d.currentScript, origin = me ? new URL(me.src).origin : '', api = origin + '/api/event';
  var site = me && me.getAttribute('data-site'), mode = (me && me.getAttribute('data-mode')) || 'opt-in';
  var objects = n.doNotTrack == '1' || w.doNotTrack == '1' || n.globalPrivacyControl === true;
  var consent = null, subject = null, key = null, deriving = false, queue = [], mem = {}, timer = 0, backoff = 0, sending = false;
  var page = null, engaged = 0, since = 0, depth = 0, visit = {};
  var K = { s: 'candor_subject', q: 'candor_queue', v: 'candor_visit', k: 'candor_key' };

  // Device storage is used only when the visitor has granted analytics consent.
  function stored() { return !!(consent && consent.analytics) && !objects && mode != 'cookieless'; }
  function get(store, k) { try { return stored() ? JSON.parse(w[store].getItem(k)) : mem[k]; } catch (e) { return mem[k]; } }
  function put(store, k, v) {
    mem[k] = v;
    if (stored()) try { w[store].setItem(k, JSON.stringify(v)); } catch (e) {}
  }
  function wipe(all) {
    [K.s, K.q, K.k].concat(all ? ['candor_consent'] : []).forEach(function (k) { try { localStorage.removeItem(k); } catch (e) {} });
    try { sessionStorage.removeItem(K.v); } catch (e) {}
  }
  function hex(b) { return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join(''); }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    return hex(crypto.getRandomValues(new Uint8Array(16)));
  }
  // The privacy key stays on this device (never in a URL or an event); the subject id, which sites
  // pass through checkouts for attribution, is derived from it: the first 16 bytes of SHA-256(key).
  // Only the key proves to the server that this browser may export or erase what is linked to it.
  function derive(k) {
    return crypto.subtle.digest('SHA-256', new TextEncoder().encode(k)).then(function (b) { return hex(new Uint8Array(b).slice(0, 16)); });
  }
  // A browser DNT/GPC signal is reported as a refusal: nothing identified leaves the page.
  function consentField() {
    if (objects) return 'denied';
    return consent ? (consent.analytics || consent.marketing ? { analytics: !!consent.analytics, marketing: !!consent.marketing } : 'denied') : 'unset';
  }

  function track(name, props, extra) {
    if (!site) return;
    var e = { site: site, name: name, url: location.href, id: uuid(), consent: consentField(), screen: w.innerWidth, ts: Date.now() };
    if (name == 'pageview' && d.referrer) e.referrer = d.referrer;
    if (subject) e.subject = subject;
    for (var k in extra) e[k] = extra[k];
    if (props) {
      e.props = {};
      for (k in props) if (k != 'value' && k != 'currency' && props[k] != null) e.props[k] = props[k];
      if (props.value != null) { e.value = +props.value; if (props.currency) e.currency = props.currency; }
    }
    queue.push(e);
    save();
    clearTimeout(timer);
    timer = setTimeout(flush, queue.length >= 10 ? 0 : 1000);
  }
  function save() { put('localStorage', K.q, queue.slice(-200)); }

  // Delivery: batches of up to 50, text/plain (no preflight), keepalive; retried with backoff;
  // held while offline. Every event carries a UUID, so a retry is never counted twice.
  function flush(beacon) {
    if (!queue.length || sending || (deriving && beacon !== true)) return;
    // An event's own time goes along only when it waited (offline, retried, from an earlier page);
    // the server takes times up to 72 h old, so older queued events are let go.
    var now = Date.now();
    queue = queue.filter(function (e) { return !(now - e.ts > 2.5e8); });
    var batch = queue.slice(0, 50), body = JSON.stringify({ events: batch }, function (k, v) { return k == 'ts' && now - v < 5000 ? undefined : v; });
    if (beacon === true && n.sendBeacon && n.sendBeacon(api, new Blob([body], { type: 'text/plain' }))) { done(batch); return; }
    if (n.onLine === false) return;
    sending = true;
    fetch(api, { method: 'POST', body: body, keepalive: body.length < 60000, headers: { 'Content-Type': 'text/plain' }, credentials: 'omit' })
      .then(function (r) {
        sending = false;
        if (r.ok) { backoff = 0; done(batch); return; }
        if (r.status == 429 || r.status >= 500) return retry();
        r.json().then(function (j) { console.warn('candor: events refused (' + r.status + '): ' + j.error); }, function () {});
        done(batch);
      }, function () { sending = false; retry(); });
  }
  function done(batch) {
    queue = queue.filter(function (e) { return batch.indexOf(e) < 0; });
    save();
    if (queue.length) timer = setTimeout(flush, 0);
  }
  function retry() {
    backoff = Math.min(backoff ? backoff * 2 : 1000, 60000);
    clearTimeout(timer);
    timer = setTimeout(flush, backoff);
  }

  // Engaged time counts only while the page is visible; scroll depth is the maximum reached.
  function tick() { if (since) { engaged += Date.now() - since; since = d.visibilityState == 'visible' ? Date.now() : 0; } }
  function scroll() {
    var h = d.documentElement, total = h.scrollHeight - w.innerHeight;
    depth = Math.max(depth, total > 0 ? Math.min(100, Math.round(100 * (w.scrollY || h.scrollTop) / total)) : 100);
  }
  function leave() {
    tick();
    if (page && engaged > 0) track('engagement', null, { engaged_ms: Math.min(engaged, 864e5), scroll: depth });
    engaged = 0; depth = 0;
  }
  function view() {
    if (location.href == page) return;
    if (page) leave();
    page = location.href; since = d.visibilityState == 'visible' ? Date.now() : 0;
    var q = new URLSearchParams(location.search), landing = {};
    q.forEach(function (v, k) { if (/^utm_|^(gclid|fbclid|msclkid|ttclid|twclid|li_fat_id|sc_click_id)$/.test(k)) landing[k] = v; });
    if (Object.keys(landing).length) { visit = landing; put('sessionStorage', K.v, visit); }
    track('pageview');
    setTimeout(scroll, 0);
  }

  function click(ev) {
    var el = ev.target && ev.target.closest && ev.target.closest('a,button,[data-candor-event]');
    if (!el) return;
    var named = el.closest('[data-candor-event]');
    if (named) {
      var p = {};
      for (var i = 0; i < named.attributes.length; i++) {
        var a = named.attributes[i];
        if (a.name.indexOf('data-candor-prop-') == 0) p[a.name.slice(17)] = a.value;
      }
      return track(named.getAttribute('data-candor-event'), p);
    }
    var href = el.getAttribute('href');
    if (!href) return;
    if (/^tel:/i.test(href)) return track('call', { link: 'tel' });
    var u = new URL(el.href, location.href);
    if (/\.(pdf|zip|docx?|xlsx?|pptx?|csv|txt|dmg|exe|msi|apk|mp3|mp4|mov|gz|tgz|7z|rar|epub)$/i.test(u.pathname)) return track('download', { file: u.pathname.split('/').pop() });
    if (/^https?:$/.test(u.protocol) && u.hostname != location.hostname) track('outbound', { to: u.hostname });
  }

  // Form submissions: the form's id or name and its field NAMES. Values only for fields listed in
  // data-form-values, only under marketing consent (the server applies the policy's allowlist too);
  // password and card fields are never reported at all.
  var allowed = ((me && me.getAttribute('data-form-values')) || '').split(',');
  function submit(ev) {
    var f = ev.target, names = [], p = {};
    if (!f || !f.elements) return;
    for (var i = 0; i < f.elements.length; i++) {
      var el = f.elements[i], t = (el.type || '').toLowerCase(), nm = el.name || el.id;
      if (!nm || t == 'submit' || t == 'button' || t == 'password' || /^cc-/.test(el.autocomplete || '') ||
          /pass|card|cvc|cvv|iban|ssn/i.test(nm) || names.indexOf(nm) >= 0) continue;
      names.push(nm);
      if (consent && consent.marketing && stored() && allowed.indexOf(nm) >= 0 && el.value) p['field.' + nm] = String(el.value).slice(0, 256);
    }
    p.form = f.id || f.getAttribute('name') || 'form';
    p.fields = names.join(',').slice(0, 256);
    track('form_submit', p);
  }

  var api_ = {
    init: function (o) { site = o.site || site; mode = o.mode || mode; if (o.endpoint) api = o.endpoint; view(); },
    track: function (name, props) {
      if (name == 'conversion') { props = props || {}; for (var k in visit) if (props[k] == null) props[k] = visit[k]; }
      track(name, props);
    },
    // {analytics, marketing}: from the Candor banner or another CMP.
    consent: function (c) {
      var was = stored();
      consent = { analytics: !!(c && c.analytics), marketing: !!(c && c.marketing) };
      if (stored()) {
        try { subject = JSON.parse(localStorage.getItem(K.s)); key = JSON.parse(localStorage.getItem(K.k)); } catch (e) {}
        if (w.crypto && crypto.subtle) {
          // The subject id always follows from the key (a new key replaces one stored before keys
          // existed); until it is derived, events wait with no subject and go out with it.
          if (!key) { key = hex(crypto.getRandomValues(new Uint8Array(32))); put('localStorage', K.k, key); }
          subject = null; deriving = true;
          try { localStorage.removeItem(K.s); } catch (e) {}
          derive(key).then(function (s) {
            deriving = false;
            if (!stored()) return;
            subject = s; put('localStorage', K.s, subject);
            queue.forEach(function (e) { if (e.consent && e.consent.analytics && !e.subject) e.subject = subject; });
            save(); clearTimeout(timer); timer = setTimeout(flush, 0);
          }, function () { deriving = false; });
        } else {
          key = null;
          if (!subject) subject = uuid().replace(/-/g, '');
          put('localStorage', K.s, subject);
        }
        put('sessionStorage', K.v, visit);
        // Events queued on an earlier page (offline, or unsent at pagehide) are sent now.
        try { (JSON.parse(localStorage.getItem(K.q)) || []).forEach(function (e) {
          if (!queue.some(function (x) { return x.id == e.id; })) queue.push(e);
        }); } catch (e) {}
        save(); if (queue.length) { clearTimeout(timer); timer = setTimeout(flush, 0); }
      } else {
        subject = key = null;
        if (was || consent) wipe();
      }
      // Events of this page still unsent were recorded before the banner reported the stored
      // choice (the pageview fires first): they go out under the choice, not as "unset".
      queue.forEach(function (e) { if (e.consent == 'unset') { e.consent = consentField(); if (subject) e.subject = subject; } });
    },
    // The subject id (after analytics consent, else null): pass it through checkouts and forms
    // (Stripe client_reference_id, a Shopify cart attribute, a hidden form field) to attribute conversions.
    subject: function () { return subject; },
    forget: function () { return selfService('forget'); },
    export: function () { return selfService('export'); },
  };
  // Resolves with the server's JSON (the export, or the filed request); rejects with its reason.
  // A filed deletion also ends recognition on this device, and forgets the consent given, so the
  // banner asks again.
  function selfService(what) {
    if (!key) return Promise.reject(new Error('no privacy key: this browser has not agreed to be recognised'));
    return fetch(origin + '/api/privacy/' + what, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ site: site, key: key }) })
      .then(function (r) { return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error);
        if (what == 'forget') { subject = key = consent = null; wipe(true); }
        return j;
      }); });
  }

  w.candor = function (cmd) { var f = api_[cmd]; return f && f.apply(null, [].slice.call(arguments, 1)); };
  var early = (w.candor_q || []);
  d.addEventListener('click', click, true);
  d.addEventListener('submit', submit, true);
  w.addEventListener('scroll', scroll, { passive: true });
  d.addEventListener('visibilitychange', function () {
    if (d.visibilityState == 'hidden') { leave(); flush(true); } else since = Date.now();
  });
  w.addEventListener('pagehide', function () { leave(); flush(true); });
  w.addEventListener('online', function () { backoff = 0; flush(); });
  w.addEventListener('popstate', view);
  ['pushState', 'replaceState'].forEach(function (m) {
    var orig = history[m];
    history[m] = function () { var r = orig.apply(this, arguments); view(); return r; };
  });
  // Calls made before the script loaded (snippet queue), then the automatic first pageview.
  var inited = false;
  early.forEach(function (args) { if (args[0] == 'init') inited = true; w.candor.apply(null, args); });
  if (!inited && site) view();
})(window, document, navigator);
