/*! Candor consent */
// consent.js: the visitor's side of consent for pixel.js. It reads the choice from the sources
// the site's policy trusts, in its order (GET /api/consent/config): a CMP through IAB TCF v2.2
// (tcf), Google Consent Mode v2 (gcm), or Candor's own banner (candor), the first present on the
// page deciding; it tells the pixel (candor('consent', ...)), records proof of consent
// (POST /api/consent) and carries out the visitor's export and deletion requests.
// Built by `make assets` (esbuild --minify) into Public/build/.
(() => {
  const w = window, d = document, me = d.currentScript, KEY = 'candor_consent';
  const at = (a) => me && me.getAttribute('data-' + a);
  const base = at('api') || (me ? new URL(me.src).origin : '') + '/api', site = at('site');
  let config, T, source, box, back, root, forgotten;

  const load = () => { try { return JSON.parse(localStorage[KEY]); } catch (e) {} };
  // Before pixel.js has loaded, a call waits in its queue (candor_q), as the install snippet's do.
  const call = (...a) => w.candor ? w.candor(...a) : (w.candor_q = w.candor_q || []).push(a);
  const tell = (c) => call('consent', c);
  const release = () => call('hold', 0);
  const post = (path, body) => fetch(base + path, { method: 'POST', keepalive: true, credentials: 'omit',
    headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(Object.assign({ site }, body)) });
  // Proof of consent: the choice, where it was read and what the CMP reported (never its TC
  // string); linked to the subject by the server only with the browser's privacy key.
  const record = (c, extra) => {
    let key = null;
    try { if (c.analytics) key = JSON.parse(localStorage.candor_key); } catch (e) {}
    post('/consent', Object.assign({ banner: '2', analytics: c.analytics, marketing: c.marketing, key, source: c.src || 'candor' }, extra)).catch(() => {});
  };
  // A choice read from a CMP. After a deletion request on this page, a CMP's standing grant is
  // not taken again until the visitor acts in the CMP.
  const fromCMP = (c, acted, extra) => {
    if (acted) forgotten = 0;
    if (forgotten) return;
    tell(c);
    if (acted) record(c, extra);
  };

  // IAB TCF v2.2. analytics needs purpose 1 (store/access on a device) with 8 or 9 (measure
  // content performance, market research); marketing needs 1, 2, 3, 4 and 7 (advertising and
  // its measurement). Consents only: a legitimate interest never identifies anyone. With a
  // tcf_vendor_id in the policy, that vendor's consent is needed too. gdprApplies false: no answer.
  const tcf = () => w.__tcfapi('addEventListener', 2, (t, ok) => {
    release();
    if (!ok || !t || t.gdprApplies === false || !/tcloaded|useractioncomplete/.test(t.eventStatus)) return;
    const p = (t.purpose && t.purpose.consents) || {}, v = config.tcf_vendor_id;
    const has = (...ids) => ids.every((i) => p[i]) && (!v || !!(t.vendor && t.vendor.consents && t.vendor.consents[v]));
    fromCMP({ analytics: has(1) && !!(p[8] || p[9]), marketing: has(1, 2, 3, 4, 7), src: 'tcf' },
      t.eventStatus == 'useractioncomplete',
      { cmp_id: t.cmpId, cmp_version: t.cmpVersion, tcf_policy_version: t.tcfPolicyVersion,
        purposes: Object.keys(p).filter((i) => p[i]).map(Number) });
  });

  // Google Consent Mode v2, from gtag('consent', 'default' | 'update', {...}) in the dataLayer:
  // analytics_storage → analytics; ad_storage and ad_user_data → marketing; ad_personalization
  // is recorded. Only an update grants: a default can only refuse (a site's default is not the
  // visitor's choice), and defaults for some regions only are not read. Updates pushed after
  // this script started are the visitor's acts, recorded as proof.
  const gcmSeen = () => (w.dataLayer || []).some((e) => e && e[0] == 'consent');
  const gcm = () => {
    const s = {}, dl = w.dataLayer, push = dl.push;
    const see = (e, live) => {
      if (!e || e[0] != 'consent' || !e[2] || e[1] == 'default' && e[2].region) return;
      for (const k of ['analytics_storage', 'ad_storage', 'ad_user_data', 'ad_personalization']) {
        if (e[2][k] && (e[1] == 'update' || e[2][k] == 'denied')) s[k] = e[2][k];
      }
      const g = (k) => s[k] == 'granted';
      fromCMP({ analytics: g('analytics_storage'), marketing: g('ad_storage') && g('ad_user_data'), src: 'gcm' },
        live && e[1] == 'update', { signals: Object.assign({}, s) });
    };
    dl.forEach((e) => see(e));
    dl.push = function () { const r = push.apply(this, arguments); for (const e of arguments) see(e, 1); return r; };
  };

  // Candor's banner, in a shadow root so the host page's CSS cannot reach it.
  const el = (tag, attrs, text) => {
    const e = d.createElement(tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  };
  const decide = (c) => {
    c = { analytics: !!c.analytics, marketing: !!c.marketing, v: config.version, at: Date.now() };
    try { localStorage[KEY] = JSON.stringify(c); } catch (e) {}
    tell(c);
    record(c);
    close();
  };
  const close = () => { if (box) { box.remove(); box = null; back.hidden = false; back.focus(); } };
  const open = () => {
    if (box || !root) return;
    const prior = load() || {}, boxes = {};
    box = el('div', { class: 'banner', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't', 'aria-describedby': 'x' });
    box.append(el('h2', { id: 't' }, T.title), el('p', { id: 'x' }, T.text));
    const opts = el('fieldset', { class: 'options', hidden: '' });
    opts.append(el('legend', {}, T.customize));
    for (const [name, on, fixed] of [['necessary', 1, 1], ['analytics', prior.analytics], ['marketing', prior.marketing]]) {
      const label = el('label'), input = el('input', { type: 'checkbox', name });
      input.checked = !!on; input.disabled = !!fixed;
      label.append(input, ' ' + T[name]);
      opts.append(label); boxes[name] = input;
    }
    const row = el('div', { class: 'actions' }), button = (choice, text, act) => {
      const b = el('button', { type: 'button', 'data-choice': choice }, text);
      b.onclick = act; row.append(b); return b;
    };
    const accept = button('accept', T.accept, () => decide({ analytics: 1, marketing: 1 }));
    button('reject', T.reject, () => decide({}));
    const custom = button('customize', T.customize, () => {
      if (!opts.hidden) return decide({ analytics: boxes.analytics.checked, marketing: boxes.marketing.checked });
      opts.hidden = false; custom.textContent = T.save; custom.setAttribute('aria-expanded', 'true'); boxes.analytics.focus();
    });
    custom.setAttribute('aria-expanded', 'false');
    box.append(opts, row);
    // Keyboard: focus stays inside the dialog while it is open.
    box.addEventListener('keydown', (e) => {
      if (e.key != 'Tab') return;
      const f = [...box.querySelectorAll('button,input:not([disabled])')].filter((x) => x.offsetParent), a = root.activeElement;
      if (e.shiftKey ? a == f[0] : a == f[f.length - 1]) { (e.shiftKey ? f[f.length - 1] : f[0]).focus(); e.preventDefault(); }
    });
    back.hidden = true;
    root.append(box);
    accept.focus();
  };
  const banner = () => {
    const host = el('candor-consent'), show = (v) => host.style.setProperty('display', v, 'important');
    root = host.attachShadow({ mode: 'open' });
    // From where the API is reached (a proxy's path on the site's own domain, or Candor's origin).
    const css = el('link', { rel: 'stylesheet', href: new URL(base.replace(/\/api$/, '') + config.css, location.href) });
    back = el('button', { type: 'button', class: 'settings' }, T.settings);
    back.onclick = open;
    // Shown once styled (or if the style sheet cannot load): never a flash of bare markup.
    show('none');
    css.onload = css.onerror = () => { show('block'); if (box) box.querySelector('button').focus(); };
    root.append(css, back);
    d.body.append(host);
    // A choice made under another policy or version is asked again; a refusal stands (it was
    // told at start) and is not asked again.
    const prior = load();
    if (prior && prior.v == config.version) tell(prior); else if (!refusal(prior)) open(), post('/consent/shown').catch(() => {});
  };
  const refusal = (c) => c && !c.analytics && !c.marketing;

  // The visitor's rights, with the privacy key the pixel keeps on this device. A filed deletion
  // also withdraws consent, so the visitor is not recognised again unless they agree again.
  const rights = (what) => {
    let key;
    try { key = JSON.parse(localStorage.candor_key); } catch (e) {}
    if (!key) return Promise.reject(Error('no privacy key'));
    return post('/privacy/' + what, { key }).then((r) => r.json().then((j) => {
      if (!r.ok) throw Error(j.error);
      if (what == 'forget') {
        try { localStorage.removeItem(KEY); } catch (e) {}
        tell(null);
        forgotten = source != 'candor';
        open();
      }
      return j;
    }));
  };
  w.candorConsent = { open, choice: load, export: () => rights('export'), forget: () => rights('forget') };

  const start = (c) => {
    config = c; T = c.strings;
    try { T = Object.assign(T, JSON.parse(at('strings') || '{}')); } catch (e) {}
    // Modes that identify nobody ask nothing, and the pixel stores nothing there.
    if (/cookieless|cnil/.test(c.mode)) return call('init', { mode: c.mode }), release();
    const present = { tcf: typeof w.__tcfapi == 'function', gcm: gcmSeen(), candor: 1 };
    source = c.sources.find((s) => present[s]);
    if (source == 'tcf') return tcf();
    if (source == 'gcm') gcm(); else if (source) banner();
    release();
  };
  // The pixel holds its events until the choice is known; a stored refusal applies at once.
  call('hold', 1);
  setTimeout(release, 4000);
  if (refusal(load())) tell(load());
  fetch(base + '/consent/config?site=' + encodeURIComponent(site) + '&lang=' + encodeURIComponent(d.documentElement.lang || navigator.language), { credentials: 'omit' })
    .then((r) => r.ok ? r.json() : Promise.reject())
    .then((c) => d.body ? start(c) : d.addEventListener('DOMContentLoaded', () => start(c)), release);
})();
