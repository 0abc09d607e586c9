/*! Candor demo page: SPA-style navigation without a reload. */
document.addEventListener('click', function (e) {
  var a = e.target.closest && e.target.closest('[data-spa]');
  if (!a) return;
  e.preventDefault();
  history.pushState({}, '', a.getAttribute('data-spa'));
  document.querySelector('h1').textContent = 'Candor demo site — SPA view';
});
