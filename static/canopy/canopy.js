// htmx settings for a strict Content-Security-Policy: no eval, no injected inline styles.
document.addEventListener("DOMContentLoaded", function () {
  if (window.htmx) {
    htmx.config.allowEval = false;
    htmx.config.includeIndicatorStyles = false;
  }
});
