// The page editor: a "Figures" link on each saved personalized block, to its section of the
// page's personalization report (Reports → Personalization). Loaded by the insert_editor_js hook.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.dataset.maReportBase;
  var match = window.location.pathname.match(/\/pages\/(\d+)\/edit\//);
  if (!base || !match) return;  // a new page has no figures yet
  var pageId = match[1];

  function addLinks(root) {
    root.querySelectorAll(".ma-block-id input").forEach(function (input) {
      var id = input.value;
      var field = input.closest("[data-contentpath='block_id']") || input.parentElement;
      if (!id || !field || field.parentElement.querySelector(":scope > .ma-figures-link")) return;
      var link = document.createElement("a");
      link.className = "ma-figures-link button button-small button-secondary";
      link.href = base + pageId + "/#block-" + encodeURIComponent(id);
      link.textContent = "Figures";
      link.title = "This block's figures in Reports → Personalization";
      link.target = "_blank";
      link.rel = "noopener";
      field.parentElement.insertBefore(link, field);
    });
  }

  function start() {
    addLinks(document);
    // Blocks rendered later (a StreamField expands, a block is added) get theirs too: once a
    // frame at most, however many changes the editor makes (typing in a rich text field).
    var queued = false;
    new MutationObserver(function () {
      if (queued) return;
      queued = true;
      window.requestAnimationFrame(function () { queued = false; addLinks(document); });
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
