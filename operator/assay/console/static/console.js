// The Assay console's few behaviours that need a script: pinned columns' offsets, dragging a column
// header to reorder (it rewrites the URL's `cols`, so the view stays bookmarkable), and following logs.
"use strict";

// htmx swaps error answers too: the server renders them as banners that say what to fix.
htmx.config.responseHandling = [{ code: "204", swap: false }, { code: ".*", swap: true }];

function pinOffsets(root) {
  for (const table of root.querySelectorAll("table.list")) {
    const head = table.tHead && table.tHead.rows[0];
    if (!head) continue;
    let left = 0;
    for (let i = 0; i < head.cells.length; i++) {
      const th = head.cells[i];
      if (i > 0 && !th.classList.contains("pinned")) break;
      for (const row of table.rows) {
        const cell = row.cells[i];
        if (cell) { cell.style.left = left + "px"; if (i === 0) cell.classList.add("pinned"); }
      }
      left += th.offsetWidth;
    }
  }
}

function columnOrder(table) {
  return Array.from(table.tHead.rows[0].cells).map((th) => th.dataset.col).filter(Boolean);
}

function enableDrag(root) {
  for (const th of root.querySelectorAll("table.list th[draggable]")) {
    th.addEventListener("dragstart", (ev) => ev.dataTransfer.setData("text/plain", th.dataset.col));
    th.addEventListener("dragover", (ev) => { ev.preventDefault(); th.classList.add("drag-over"); });
    th.addEventListener("dragleave", () => th.classList.remove("drag-over"));
    th.addEventListener("drop", (ev) => {
      ev.preventDefault();
      const moved = ev.dataTransfer.getData("text/plain");
      const order = columnOrder(th.closest("table")).filter((c) => c !== moved);
      order.splice(order.indexOf(th.dataset.col), 0, moved);
      const url = new URL(window.location.href);
      url.searchParams.set("cols", order.join(","));
      window.location.assign(url.toString());
    });
  }
}

function followLogs(root) {
  for (const pre of root.querySelectorAll(".log pre")) pre.scrollTop = pre.scrollHeight;
}

function enhance(root) { pinOffsets(root); enableDrag(root); followLogs(root); }

document.addEventListener("DOMContentLoaded", () => enhance(document));
document.addEventListener("htmx:afterSettle", (ev) => enhance(ev.target));
