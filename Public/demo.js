/*! Candor demo page: SPA-style navigation without a reload. */
document.addEventListener('click', function (e) {
  var a = e.target.closest && e.target.closest('[data-spa]');
  if (!a) return;
  e.preventDefault();
  history.pushState({}, '', a.getAttribute('data-spa'));
  document.querySelector('h1').textContent = 'Candor demo site — SPA view';
});

// "Your data": the visitor's own export (a JSON download) and deletion request, via the pixel.
function candorResult(text) { document.getElementById('privacy-result').textContent = text; }
document.addEventListener('click', function (e) {
  var id = e.target && e.target.id;
  if (id == 'export-data') {
    window.candor('export').then(function (data) {
      var a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
      a.download = 'my-data.json';
      a.click();
      candorResult('Export: ' + data.events.length + ' events, ' + data.sessions.length + ' visits, ' +
        data.consent_history.length + ' consent records.');
    }, function (err) { candorResult('Export refused: ' + err.message); });
  } else if (id == 'forget-me') {
    window.candor('forget').then(function (r) {
      candorResult('Deletion request ' + r.request + ' received; carried out by ' + r.deadline_at + ' at the latest.');
    }, function (err) { candorResult('Deletion refused: ' + err.message); });
  }
});
