/*! Candor dashboard: copy buttons. */
document.addEventListener('click', function (e) {
  var id = e.target && e.target.getAttribute && e.target.getAttribute('data-copy');
  if (!id) return;
  var text = document.getElementById(id).textContent;
  navigator.clipboard.writeText(text).then(function () { e.target.textContent = 'Copied'; }, function () {
    var range = document.createRange();
    range.selectNodeContents(document.getElementById(id));
    getSelection().removeAllRanges(); getSelection().addRange(range);
    e.target.textContent = 'Selected: press Ctrl+C';
  });
});

/* Live events: Server-Sent Events, rendered with textContent only (visitor strings are hostile). */
(function () {
  var body = document.getElementById('live-events');
  if (!body || !window.EventSource) return;
  var paused = false, status = document.getElementById('live-status'), filter = document.getElementById('live-filter');
  var source = new EventSource(body.getAttribute('data-src'));
  function visible(row) {
    var q = filter.value.toLowerCase();
    row.hidden = !!q && row.textContent.toLowerCase().indexOf(q) < 0;
  }
  source.onopen = function () { status.textContent = 'Live'; };
  source.onerror = function () { status.textContent = 'Reconnecting…'; };
  source.onmessage = function (m) {
    if (paused) return;
    var e = JSON.parse(m.data), row = document.createElement('tr');
    [e.ts.slice(11, 19), e.name, e.path, e.referrer || e.source, e.country || '', e.device || ''].forEach(function (v) {
      var td = document.createElement('td');
      td.textContent = v;
      row.appendChild(td);
    });
    visible(row);
    body.insertBefore(row, body.firstChild);
    while (body.children.length > 200) body.removeChild(body.lastChild);
  };
  document.getElementById('live-pause').addEventListener('click', function (ev) {
    paused = !paused;
    ev.target.textContent = paused ? 'Resume' : 'Pause';
    status.textContent = paused ? 'Paused' : 'Live';
  });
  filter.addEventListener('input', function () { Array.prototype.forEach.call(body.children, visible); });
})();

/* Real time: the visitor counts and the pages table, refreshed every 10 seconds (textContent only). */
(function () {
  var pages = document.getElementById('rt-pages');
  if (!pages || !window.fetch) return;
  var status = document.getElementById('rt-status');
  function refresh() {
    fetch(pages.getAttribute('data-src'), { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }).then(function (f) {
      document.getElementById('rt-five').textContent = f.five;
      document.getElementById('rt-thirty').textContent = f.thirty;
      while (pages.firstChild) pages.removeChild(pages.firstChild);
      f.pages.forEach(function (p) {
        var row = document.createElement('tr');
        [p.value, p.visitors].forEach(function (v) { var td = document.createElement('td'); td.textContent = v; row.appendChild(td); });
        pages.appendChild(row);
      });
      document.getElementById('rt-empty').hidden = f.pages.length > 0;
      status.textContent = 'Updated ' + new Date().toLocaleTimeString();
    }, function () { status.textContent = 'Not updated: the server did not answer; retrying.'; });
  }
  setInterval(refresh, 10000);
})();

/* Tabs: each group of tables becomes a tab list (the tables' headings name the tabs; arrow keys move). */
Array.prototype.forEach.call(document.querySelectorAll('[data-tabs]'), function (group) {
  var list = group.querySelector('.tablist'), panels = group.querySelectorAll('section.breakdown');
  if (!list || panels.length < 2) return;
  var tabs = Array.prototype.map.call(panels, function (panel, i) {
    var tab = document.createElement('button');
    tab.type = 'button';
    tab.setAttribute('role', 'tab');
    tab.id = panel.id + '-tab';
    tab.setAttribute('aria-controls', panel.id);
    tab.textContent = panel.querySelector('h2').textContent;
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', tab.id);
    list.appendChild(tab);
    return tab;
  });
  /* The tab chosen in a group is remembered in this browser (every site page opens on it). */
  var key = 'candor.tab.' + group.getAttribute('data-tabs');
  function remembered() {
    try { var id = localStorage.getItem(key); } catch (e) { return 0; }
    for (var j = 0; j < panels.length; j++) if (panels[j].id === id) return j;
    return 0;
  }
  function select(i, focus) {
    tabs.forEach(function (tab, j) {
      tab.setAttribute('aria-selected', String(i === j));
      tab.tabIndex = i === j ? 0 : -1;
      panels[j].hidden = i !== j;
    });
    if (focus) tabs[i].focus();
  }
  function choose(i, focus) {
    select(i, focus);
    try { localStorage.setItem(key, panels[i].id); } catch (e) { /* storage refused: not remembered */ }
  }
  tabs.forEach(function (tab, i) {
    tab.addEventListener('click', function () { choose(i, false); });
    tab.addEventListener('keydown', function (e) {
      var n = tabs.length, k = e.key === 'ArrowRight' ? (i + 1) % n : e.key === 'ArrowLeft' ? (i + n - 1) % n
        : e.key === 'Home' ? 0 : e.key === 'End' ? n - 1 : -1;
      if (k >= 0) { e.preventDefault(); choose(k, true); }
    });
  });
  group.classList.add('tabbed');
  select(remembered(), false);
});
