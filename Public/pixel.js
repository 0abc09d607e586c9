/*! Candor pixel: no cookies; device storage only after consent */
// Built by `make assets` (esbuild --bundle --format=iife --minify) into Public/build/: pixel.js
// with LITE=false, and pixel-lite.js with LITE=true (pageviews only, nothing stored on the device,
// no retries). Written as a module so the build drops what LITE leaves unused.
const w = window, d = document, n = navigator;
  var me = d.currentScript, at = (a) => me && me.getAttribute('data-' + a);
// data-api: where Candor's /api is reached (a path on the site's own domain behind a proxy).
var base = at('api') || (me ? new URL(me.src).origin : '') + '/api';
var site = at('site'), mode = at('mode') || 'opt-in', P = 'candor_';
var objects = !LITE && (n.doNotTrack == '1' || w.doNotTrack == '1' || n.globalPrivacyControl === true);
var queue = [], page, timer, consent, subject, key, deriving, sending, backoff = 0, visit = {};
var engaged = 0, since = 0, depth = 0, optedOut, held;
// A stored opt-out ends everything: no event is sent and nothing else is read or written. It is
// honoured for 13 months from when it was given (the CNIL's limit for what an exempt measurement
// keeps on a device), never extended.
try { optedOut = Date.now() - localStorage[P + 'optout'] < 3.4128e10; } catch (e) {}

// Device storage: only with analytics consent, without DNT/GPC, and never in cookieless or
// CNIL-exempt mode (both count without storing anything on the device).
function stored() { return !LITE && !optedOut && consent && consent.analytics && !objects && !/cookieless|cnil/.test(mode) && w.crypto && crypto.subtle; }
function store(k, v, session) {
  if (stored()) try { w[session ? 'sessionStorage' : 'localStorage'][P + k] = JSON.stringify(v); } catch (e) {}
}
function read(k) { try { return JSON.parse(localStorage[P + k]); } catch (e) {} }
function wipe(all) {
  try {
    ['subject', 'queue', 'key', all && 'consent'].forEach((k) => { localStorage.removeItem(P + k); });
    sessionStorage.removeItem(P + 'visit');
  } catch (e) {}
}
function hex(b) { return [].map.call(b, (x) => (x + 256).toString(16).slice(1)).join(''); }
function uuid() { return crypto.randomUUID ? crypto.randomUUID() : hex(crypto.getRandomValues(new Uint8Array(16))); }
// A browser DNT/GPC signal is reported as a refusal: nothing identified leaves the page.
// pixel-lite.js reports every event as not consented: it is counted anonymously, never identified.
function consentField() {
  return LITE ? 'denied' : objects || consent && !consent.analytics && !consent.marketing ? 'denied' : consent ?
    { analytics: consent.analytics, marketing: consent.marketing, src: consent.src } : 'unset';
}

function track(name, props, extra) {
  if (!site || optedOut) return;
  var e = { site: site, name: name, url: location.href, id: uuid(), consent: consentField(), screen: w.innerWidth, ts: LITE ? void 0 : Date.now() }, k;
  if (name == 'pageview' && d.referrer) e.referrer = d.referrer;
  if (subject) e.subject = subject;
  for (k in extra) e[k] = extra[k];
  if (props) {
    e.props = {};
    for (k in props) if (k != 'value' && k != 'currency' && props[k] != null) e.props[k] = props[k];
    if (props.value != null) { e.value = +props.value; if (props.currency) e.currency = props.currency; }
  }
  queue.push(e);
  save();
  later(LITE || queue.length >= 10 ? 0 : 1000);
}
function save() { LITE || store('queue', queue.slice(-200)); }

// Delivery: batches of up to 50, text/plain (no preflight), keepalive; retried with backoff;
// held while offline. Every event carries a UUID, so a retry is never counted twice.
function flush(beacon) {
  if (!queue.length || sending || (deriving || held) && beacon !== true) return;
  // An event's own time goes along only when it waited (offline, retried, from an earlier page);
  // the server takes times up to 72 h old, so older queued events are let go.
  var now = Date.now(), api = base + '/event', batch, body;
  if (!LITE) queue = queue.filter((e) => now - e.ts < 2.5e8);
  batch = queue.slice(0, 50);
  body = JSON.stringify({ events: batch }, LITE ? null : (k, v) => k == 'ts' && now - v < 5000 ? void 0 : v);
  if (!LITE && beacon === true && n.sendBeacon && n.sendBeacon(api, new Blob([body], { type: 'text/plain' }))) return done(batch);
  if (!LITE && n.onLine === false) return;
  sending = true;
  fetch(api, { method: 'POST', body: body, keepalive: body.length < 6e4, headers: { 'Content-Type': 'text/plain' }, credentials: 'omit' })
    .then((r) => {
      sending = false;
      if (r.ok) { backoff = 0; return done(batch); }
      if (!LITE && (r.status == 429 || r.status >= 500)) return retry();
      r.json().then((j) => { console.warn('candor: ' + r.status + ' ' + j.error); }, () => {});
      done(batch);
    }, () => { sending = false; LITE ? done(batch) : retry(); });
}
function done(batch) {
  queue = queue.filter((e) => batch.indexOf(e) < 0);
  save();
  if (queue.length) later(0);
}
function retry() { later(backoff = Math.min(backoff * 2 || 1000, 6e4)); }
function later(ms) { clearTimeout(timer); timer = setTimeout(flush, ms); }

// Engaged time counts only while the page is visible; scroll depth is the maximum reached.
function visible() { return d.visibilityState == 'visible' ? Date.now() : 0; }
function tick() { if (since) { engaged += Date.now() - since; since = visible(); } }
function scroll() {
  var h = d.documentElement, total = h.scrollHeight - w.innerHeight;
  depth = Math.max(depth, total > 0 ? Math.min(100, Math.round(100 * (w.scrollY || h.scrollTop) / total)) : 100);
}
function leave() {
  if (LITE) return;
  tick();
  if (page && engaged > 0) track('engagement', null, { engaged_ms: Math.min(engaged, 864e5), scroll: depth });
  engaged = depth = 0;
}
function view() {
  if (location.href == page) return;
  leave();
  page = location.href;
  LITE || (since = visible());
  var landing = {}, found;
  if (!LITE) new URLSearchParams(location.search).forEach((v, k) => {
    if (/^utm_|^(gclid|fbclid|msclkid|ttclid|twclid|li_fat_id|sc_click_id|dclid|wbraid|gbraid)$/.test(k)) landing[k] = v, found = 1;
  });
  if (!LITE && found) store('visit', visit = landing, 1);
  track('pageview');
  LITE || setTimeout(scroll, 0);
}

function click(ev) {
  var el = ev.target.closest && ev.target.closest('a,button,[data-candor-event]'), named = el && el.closest('[data-candor-event]'), p = {}, u, i, a;
  if (named) {
    for (i = 0; a = named.attributes[i]; i++) if (!a.name.indexOf('data-candor-prop-')) p[a.name.slice(17)] = a.value;
    return track(named.getAttribute('data-candor-event'), p);
  }
  if (!el || !el.getAttribute('href')) return;
  if (/^tel:/i.test(el.getAttribute('href'))) return track('call', { link: 'tel' });
  u = new URL(el.href, location.href);
  if (/\.(pdf|zip|docx?|xlsx?|pptx?|csv|txt|dmg|exe|msi|apk|mp[34]|mov|t?gz|7z|rar|epub)$/i.test(u.pathname)) return track('download', { file: u.pathname.split('/').pop() });
  if (/^https?:$/.test(u.protocol) && u.hostname != location.hostname) track('outbound', { to: u.hostname });
}

// Form submissions: the form's id or name and its field NAMES. Values only for fields listed in
// data-form-values, only under marketing consent (the server applies the policy's allowlist too);
// password and card fields are never reported at all.
function submit(ev) {
  var f = ev.target, names = [], p = {}, i, el, nm, allowed = (at('form-values') || '').split(',');
  if (!f.elements) return;
  for (i = 0; el = f.elements[i]; i++) {
    nm = el.name || el.id;
    if (!nm || /^(submit|button) |pass|card|cvc|cvv|iban|ssn| cc-/i.test(el.type + ' ' + nm + ' ' + el.autocomplete) || names.indexOf(nm) >= 0) continue;
    names.push(nm);
    if (stored() && consent.marketing && allowed.indexOf(nm) >= 0 && el.value) p['field.' + nm] = String(el.value).slice(0, 256);
  }
  p.form = f.id || f.getAttribute('name') || 'form';
  p.fields = names.join().slice(0, 256);
  track('form_submit', p);
}

// The privacy key stays on this device (never in a URL or an event); the subject id, which sites
// pass through checkouts for attribution, is derived from it: the first 16 bytes of SHA-256(key).
// Only the key proves to the server that this browser may export or erase what is linked to it.
// consent({analytics, marketing, src}): from Candor's consent.js (its banner or a CMP it reads:
// src tcf or gcm) or the site's own code.
function setConsent(c) {
  consent = { analytics: !!(c && c.analytics), marketing: !!(c && c.marketing), src: c && c.src };
  if (stored()) {
    // Identification needs a privacy key, so the visitor can export or erase what is linked
    // to it; without WebCrypto (a page not served over https) the events stay anonymous.
    if (!(key = read('key'))) store('key', key = hex(crypto.getRandomValues(new Uint8Array(32))));
    subject = null; deriving = true;
    // Until the subject id is derived from the key, events wait and go out with it.
    crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)).then((b) => {
      deriving = false;
      if (!stored()) return;
      store('subject', subject = hex(new Uint8Array(b).slice(0, 16)));
      stamp(); save(); flush();
    }, () => { deriving = false; });
    store('visit', visit, 1);
    // Events queued on an earlier page (offline, or unsent at pagehide) are sent now.
    (read('queue') || []).forEach((e) => { if (!queue.some((x) => x.id == e.id)) queue.push(e); });
    save(); later(0);
  } else {
    subject = key = null;
    wipe();
  }
  stamp();
}
// Events of this page still unsent were recorded before the choice was reported (the pageview
// fires first): they go out under the choice, not as "unset", and with the subject once known;
// after a withdrawal or a deletion request, queued events no longer carry one.
function stamp() {
  queue.forEach((e) => {
    if (e.consent == 'unset') e.consent = consentField();
    e.subject = e.consent.analytics && subject || void 0;
  });
}

// The commands of `candor(...)`. forget and export are the visitor's rights: consent.js carries
// them out with the privacy key (and after a deletion withdraws consent, so its banner asks again).
var rights = (what) => w.candorConsent ? candorConsent[what]() : Promise.reject(Error('candor: no consent.js'));
var commands = LITE ? { init, track: custom, optout } : {
  init, track: custom, optout,
  consent: setConsent,
  // consent.js holds the events while it reads the visitor's choice (at most 4 s), so a stored
  // refusal is not preceded by events sent as "no choice yet".
  hold(h) { held = h; h || later(1000); },
  // The subject id (after analytics consent, else null): pass it through checkouts and forms
  // (Stripe client_reference_id, a Shopify cart attribute, a hidden form field) to attribute conversions.
  subject: () => subject,
  forget: () => rights('forget'),
  export: () => rights('export'),
};
function init(o) { site = o.site || site; mode = o.mode || mode; base = o.api || base; view(); }
function custom(name, props) {
  if (!LITE && name == 'conversion') { props = props || {}; for (var k in visit) if (props[k] == null) props[k] = visit[k]; }
  track(name, props);
}
// The visitor's lasting refusal (CNIL's opt-out for consent-free audience measurement): the only
// thing ever written without consent; afterwards no event is sent.
function optout() { optedOut = 1; queue = []; LITE || wipe(1); try { localStorage[P + 'optout'] = Date.now(); } catch (e) {} }

w.candor = (cmd, ...args) => commands[cmd] && commands[cmd](...args);
var early = w.candor_q || [], inited;
if (!LITE) {
  d.addEventListener('click', click, true);
  d.addEventListener('submit', submit, true);
  w.addEventListener('scroll', scroll, { passive: true });
  w.addEventListener('online', () => { backoff = 0; flush(); });
}
if (!LITE) {
  d.addEventListener('visibilitychange', () => {
    if (d.visibilityState == 'hidden') { leave(); flush(true); } else since = Date.now();
  });
  w.addEventListener('pagehide', () => { leave(); flush(true); });
}
w.addEventListener('popstate', view);
['pushState', 'replaceState'].forEach((m) => {
  var orig = history[m];
  history[m] = function () { var r = orig.apply(this, arguments); view(); return r; };
});
// Calls made before the script loaded (snippet queue), then the automatic first pageview.
early.forEach((args) => { if (args[0] == 'init') inited = 1; w.candor(...args); });
if (!inited && site) view();
