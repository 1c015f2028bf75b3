/* The printable shift report (GET /api/reports/shift?format=html): its print button. A file of its
 * own, since the page's security policy runs no inline script. */
(function () {
  'use strict';
  const button = document.getElementById('print-report');
  if (button) button.addEventListener('click', () => window.print());
})();
