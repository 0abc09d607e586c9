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
