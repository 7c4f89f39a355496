// Live updates for the dashboard: server-sent events replace what the server
// rendered. Agent output is only ever set as text, never parsed as HTML.
"use strict";

function followProjects(box) {
  const events = new EventSource(box.dataset.live);
  events.addEventListener("projects", (event) => {
    box.innerHTML = event.data; // already rendered and escaped by the server's templates
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
