// Tell the shop which time zone this browser is in, so times read in local time.
// A cookie, not a form: it works on every page and needs no inline script (CSP).
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // IANA names (Europe/Berlin, America/Argentina/Buenos_Aires) are valid cookie values as is.
    if (!zone || !/^[A-Za-z0-9_+\/-]+$/.test(zone)) return;
    if (("; " + document.cookie + ";").indexOf("; tz=" + zone + ";") !== -1) return;
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
  } catch (e) { /* an old browser: the shop's own time zone is used */ }
})();
