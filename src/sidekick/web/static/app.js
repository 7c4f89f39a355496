// Live updates for the dashboard: server-sent events replace what the server
// rendered. Agent output is only ever set as text, never parsed as HTML.
"use strict";

function rowFrom(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

// An update holds the rows that changed, rendered and escaped by the server's
// templates, and the order of all rows when it changed (rows not in it are gone).
function applyUpdate(box, update) {
  document.getElementById("live-meta").innerHTML = update.meta;
  document.getElementById("live-extras").innerHTML = update.extras;
  const body = box.querySelector("table.projects tbody");
  const rows = new Map([...body.rows].map((row) => [row.dataset.project, row]));
  for (const [name, html] of Object.entries(update.rows)) {
    const row = rowFrom(html);
    const old = rows.get(name);
    if (old) {
      old.replaceWith(row);
    } else {
      body.appendChild(row);
    }
    rows.set(name, row);
  }
  if (update.order) {
    const wanted = new Set(update.order);
    rows.forEach((row, name) => {
      if (!wanted.has(name)) {
        row.remove();
      }
    });
    update.order.forEach((name) => body.appendChild(rows.get(name)));
  }
}

function followProjects(box) {
  const events = new EventSource(box.dataset.live);
  events.addEventListener("projects", (event) => {
    applyUpdate(box, JSON.parse(event.data));
    box.dataset.updates = String(Number(box.dataset.updates || "0") + 1);
  });
}

function followOutput(pre) {
  const limit = Number(pre.dataset.limit || "65536");
  const state = document.getElementById("output-state");
  const events = new EventSource(pre.dataset.output);
  const keepTail = () => {
    if (pre.textContent.length > limit) {
      pre.textContent = pre.textContent.slice(-limit);
    }
    pre.scrollTop = pre.scrollHeight;
  };
  events.addEventListener("tail", (event) => {
    pre.textContent = JSON.parse(event.data);
    keepTail();
  });
  events.addEventListener("append", (event) => {
    pre.textContent += JSON.parse(event.data);
    keepTail();
  });
  events.addEventListener("end", () => {
    events.close();
    if (state) {
      state.textContent = "The agent has ended.";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(followProjects);
  document.querySelectorAll("[data-output]").forEach(followOutput);
});
