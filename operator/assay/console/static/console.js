// The Assay console's few behaviours that need a script: pinned columns' offsets, dragging a column
// header to reorder (it rewrites the URL's `cols`, so the view stays bookmarkable), following logs, and
// keeping the list's URL in step with its panes (what changes in a pane's frame is copied into it).
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
      window.location.assign(readable(url));
    });
  }
}

function followLogs(root) {
  for (const pre of root.querySelectorAll(".log pre")) pre.scrollTop = pre.scrollHeight;
}

// The list's URL holds the panes' state: `open` (the details beside it, with their own query) and the
// compared evaluations (`e`, `base`, `diff`). A tab or a baseline changed inside a frame lands there.
const COMPARE_KEYS = ["e", "base", "diff"];

// URLSearchParams writes `,` `:` `/` escaped; the console's URLs keep them readable, as the server does.
function readable(url) {
  return url.toString().replace(/%2C/g, ",").replace(/%3A/g, ":").replace(/%2F/g, "/");
}

function paneState(frame, url) {
  const inner = frame.contentWindow.location;
  if (frame.dataset.pane === "details") {
    url.searchParams.set("open", decodeURIComponent(inner.pathname.replace(/^\/e\//, "")) + inner.search);
    return;
  }
  for (const key of COMPARE_KEYS) url.searchParams.delete(key);
  for (const [key, value] of new URLSearchParams(inner.search)) {
    if (COMPARE_KEYS.includes(key)) url.searchParams.append(key, value);
  }
}

function followPanes() {
  for (const frame of document.querySelectorAll("iframe[data-pane]")) {
    frame.addEventListener("load", () => {
      const inner = frame.contentWindow.location;
      if (!inner.pathname.startsWith("/")) return;  // not loaded (yet)
      frame.closest(".pane").querySelector("a.full").href = inner.pathname + inner.search;
      const url = new URL(window.location.href);
      paneState(frame, url);
      history.replaceState(null, "", readable(url));
    });
  }
}

// The list's links were drawn with the panes as the page opened; a link that leaves a pane's state as it
// was then gets the state the pane has now (one that changes it, such as "close", keeps its own).
const PANE_KEYS = ["open", ...COMPARE_KEYS];
const drawnWith = new URLSearchParams(window.location.search);

function samePaneState(link, key) {
  return link.getAll(key).join("\n") === drawnWith.getAll(key).join("\n");
}

document.addEventListener("click", (ev) => {
  const anchor = ev.target.closest(".workspace a[href^='?']");
  if (!anchor) return;
  const url = new URL(anchor.href);
  const now = new URLSearchParams(window.location.search);
  const stale = PANE_KEYS.filter((k) => samePaneState(url.searchParams, k) && !samePaneState(now, k));
  if (!stale.length) return;
  for (const key of stale) {
    url.searchParams.delete(key);
    for (const value of now.getAll(key)) url.searchParams.append(key, value);
  }
  anchor.href = readable(url);
});

// Forms carry the view in hidden fields; a pane may have changed it since the page was drawn.
function keepView(form) {
  form.addEventListener("submit", () => {
    const current = new URLSearchParams(window.location.search);
    for (const key of form.dataset.keep.split(" ")) {
      for (const old of form.querySelectorAll(`input[type=hidden][name="${key}"]`)) old.remove();
      for (const value of current.getAll(key)) {
        const field = document.createElement("input");
        Object.assign(field, { type: "hidden", name: key, value });
        form.appendChild(field);
      }
    }
  });
}

function enhance(root) { pinOffsets(root); enableDrag(root); followLogs(root); }

document.addEventListener("DOMContentLoaded", () => {
  enhance(document);
  followPanes();
  for (const form of document.querySelectorAll("form[data-keep]")) keepView(form);
});
// The table's refresh asks for the view the page shows now (a pane or a drag may have changed it).
document.addEventListener("htmx:configRequest", (ev) => {
  if (ev.detail.elt.id === "rows") ev.detail.path = ev.detail.path.split("?")[0] + window.location.search;
});
document.addEventListener("htmx:afterSettle", (ev) => enhance(ev.target));
