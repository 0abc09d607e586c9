/*! Candor consent banner: necessary / analytics / marketing, equal-weight choices, withdrawable. */
(function (w, d) {
  'use strict';
  var me = d.currentScript, origin = me ? new URL(me.src).origin : '';
  var site = me && me.getAttribute('data-site');
  var VERSION = '1', KEY = 'candor_consent';
  var T = {
    title: 'Your privacy', text: 'We count visits to improve this site. With your permission we also remember you across visits (analytics) and measure campaigns (marketing). You can change this at any time.',
    accept: 'Accept all', reject: 'Reject all', customize: 'Customize', save: 'Save choices',
    necessary: 'Necessary (always on)', analytics: 'Analytics', marketing: 'Marketing', settings: 'Privacy settings',
  };
  try { var s = JSON.parse((me && me.getAttribute('data-strings')) || '{}'); for (var k in s) T[k] = String(s[k]); } catch (e) {}

  function load() { try { return JSON.parse(localStorage.getItem(KEY)); } catch (e) { return null; } }
  function el(tag, attrs, text) {
    var e = d.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  function tell(choice) { if (typeof w.candor == 'function') w.candor('consent', choice); }

  function decide(choice) {
    choice = { analytics: !!choice.analytics, marketing: !!choice.marketing, v: VERSION, at: Date.now() };
    try { localStorage.setItem(KEY, JSON.stringify(choice)); } catch (e) {}
    tell(choice);
    var key = null;
    try { if (choice.analytics) key = JSON.parse(localStorage.getItem('candor_key')); } catch (e) {}
    // Proof of consent: site, banner version, choices; the server adds time and policy version, and
    // links the record to the subject only with the browser's privacy key.
    if (site) fetch(origin + '/api/consent', { method: 'POST', keepalive: true, credentials: 'omit', headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ site: site, banner: VERSION, analytics: choice.analytics, marketing: choice.marketing, key: key }) }).catch(function () {});
    close();
  }

  var box = null, back = null;
  function close() { if (box) { box.remove(); box = null; } if (back) back.focus(); }
  function open() {
    if (box) return;
    var prior = load() || {};
    box = el('div', { 'class': 'candor-banner', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'candor-title', 'aria-describedby': 'candor-text' });
    box.appendChild(el('h2', { id: 'candor-title' }, T.title));
    box.appendChild(el('p', { id: 'candor-text' }, T.text));
    var opts = el('fieldset', { 'class': 'candor-options', hidden: '' });
    opts.appendChild(el('legend', {}, T.customize));
    var boxes = {};
    [['necessary', true, true], ['analytics', prior.analytics], ['marketing', prior.marketing]].forEach(function (o) {
      var label = el('label'), input = el('input', { type: 'checkbox', name: o[0] });
      input.checked = !!o[1]; input.disabled = !!o[2];
      label.appendChild(input); label.appendChild(d.createTextNode(' ' + T[o[0]]));
      opts.appendChild(label); boxes[o[0]] = input;
    });
    box.appendChild(opts);
    var row = el('div', { 'class': 'candor-actions' });
    var accept = el('button', { type: 'button', 'data-choice': 'accept' }, T.accept);
    var reject = el('button', { type: 'button', 'data-choice': 'reject' }, T.reject);
    var custom = el('button', { type: 'button', 'data-choice': 'customize', 'aria-expanded': 'false' }, T.customize);
    accept.onclick = function () { decide({ analytics: true, marketing: true }); };
    reject.onclick = function () { decide({ analytics: false, marketing: false }); };
    custom.onclick = function () {
      if (opts.hidden) { opts.hidden = false; custom.textContent = T.save; custom.setAttribute('aria-expanded', 'true'); boxes.analytics.focus(); }
      else decide({ analytics: boxes.analytics.checked, marketing: boxes.marketing.checked });
    };
    row.appendChild(accept); row.appendChild(reject); row.appendChild(custom);
    box.appendChild(row);
    // Keyboard: focus stays inside the dialog while it is open.
    box.addEventListener('keydown', function (e) {
      if (e.key != 'Tab') return;
      var f = [].filter.call(box.querySelectorAll('button,input:not([disabled])'), function (x) { return x.offsetParent !== null; });
      var first = f[0], last = f[f.length - 1];
      if (e.shiftKey && d.activeElement == first) { last.focus(); e.preventDefault(); }
      else if (!e.shiftKey && d.activeElement == last) { first.focus(); e.preventDefault(); }
    });
    d.body.appendChild(box);
    accept.focus();
  }

  function start() {
    back = el('button', { type: 'button', 'class': 'candor-settings' }, T.settings);
    back.onclick = open;
    d.body.appendChild(back);
    var prior = load();
    if (prior && prior.v == VERSION) tell(prior); else open();
  }
  w.candorConsent = { open: open, choice: load };
  if (d.body) start(); else d.addEventListener('DOMContentLoaded', start);
})(window, document);
