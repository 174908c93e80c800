// genobatch console: live updates over server-sent events. No framework, no build step.
"use strict";

(function () {
  const FINAL = ["SUCCEEDED", "FAILED"];
  const liveState = document.getElementById("live-state");

  function setLive(state, text) {
    if (!liveState) return;
    liveState.dataset.state = state;
    liveState.textContent = text;
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = "status s-" + status.toLowerCase();
    span.dataset.status = "";
    span.textContent = status;
    return span;
  }

  function stream(url, handlers) {
    const source = new EventSource(url);
    source.onopen = () => setLive("live", "live");
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) setLive("off", "disconnected - reload the page");
      else setLive("connecting", "reconnecting…");
    };
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (message) => handler(JSON.parse(message.data), source));
    }
    return source;
  }

  // Replace the listed sections with those of a fresh copy of this page (server-rendered once, so
  // the page never has a second renderer). A section holding keyboard focus is left alone.
  let refreshing = null;
  let refreshAgain = false;
  let lastRefresh = 0;
  let refreshGap = 1500;
  function refreshSections(ids) {
    if (refreshing) { refreshAgain = true; return; }
    // However fast the stream reports changes: at most one refresh every 1.5 s, and never more
    // than a quarter of the server's time on this page (a large run's page takes a while to build).
    const wait = lastRefresh + refreshGap - Date.now();
    if (wait > 0) { refreshing = new Promise((resolve) => setTimeout(resolve, wait)).then(() => { refreshing = null; refreshSections(ids); }); return; }
    lastRefresh = Date.now();
    const began = performance.now();
    refreshing = fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(String(response.status)))))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html");
        const find = (doc, key) => doc.querySelector(`section[aria-labelledby="${key}"]`) || doc.getElementById(key);
        for (const id of ids) {
          const now = find(document, id);
          const next = find(fresh, id);
          if (now && next && !now.contains(document.activeElement)) now.innerHTML = next.innerHTML;
        }
        document.dispatchEvent(new CustomEvent("console:refreshed"));
      })
      .catch(() => setLive("connecting", "could not refresh - retrying"))
      .finally(() => {
        refreshing = null;
        refreshGap = Math.max(1500, 4 * (performance.now() - began));
        if (refreshAgain) { refreshAgain = false; refreshSections(ids); }
      });
  }

  function onSummary(summary) {
    document.querySelectorAll("tr[data-queue]").forEach((row) => {
      const counts = summary.queues[row.dataset.queue] || {};
      row.querySelectorAll("td[data-count]").forEach((cell) => {
        const value = String(counts[cell.dataset.count] || 0);
        const target = cell.querySelector("a") || cell;
        if (target.textContent !== value) target.textContent = value;
      });
    });
    document.querySelectorAll("tr[data-environment]").forEach((row) => {
      const used = summary.vcpus[row.dataset.environment] || 0;
      const span = row.querySelector("[data-vcpus]");
      if (span) span.textContent = String(used);
      const meter = row.querySelector("meter");
      if (meter) meter.value = used;
    });
  }

  function onJobs(changes) {
    let unseen = false;
    for (const job of changes) {
      const row = document.querySelector(`tr[data-job-id="${CSS.escape(job.jobId)}"]`);
      if (!row) { unseen = unseen || !job.parentId; continue; }
      const old = row.querySelector("[data-status]");
      if (old) old.replaceWith(badge(job.status));
      const exit = row.querySelector("[data-exit]");
      if (exit && job.exitCode !== null && job.exitCode !== undefined) exit.textContent = String(job.exitCode);
      const reason = row.querySelector("[data-reason]");
      if (reason && !job.summary) reason.textContent = job.statusReason || "";
      row.classList.add("changed");
      setTimeout(() => row.classList.remove("changed"), 1500);
    }
    const note = document.getElementById("jobs-live");
    if (note && unseen) note.textContent = "New jobs were submitted: reload or filter to see them.";
  }

  function jobLog() {
    const log = document.getElementById("log");
    if (!log) return;
    const state = document.getElementById("log-state");
    let source = null;
    let shownStatus = document.querySelector("#job-status [data-status]")?.textContent;
    function connect(url) {
      source = stream(url, {
        status: (data) => {
          const holder = document.getElementById("job-status");
          // A status other than the one shown (the page as rendered, then each update) changes
          // the attempts and facts too: take them fresh from the server.
          if (data.status !== shownStatus) refreshSections(["attempts-title", "job-facts"]);
          shownStatus = data.status;
          if (holder) holder.replaceChildren(badge(data.status));
          if (FINAL.includes(data.status)) {
            const actions = document.getElementById("job-actions");
            if (actions) actions.hidden = true;
          }
          if (!log.dataset.src.includes("attempt=") && data.attempts > 0) state.textContent = "following attempt " + data.attempts;
        },
        log: (data) => {
          const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.append(document.createTextNode(data.data));
          if (atBottom) log.scrollTop = log.scrollHeight;
          state.textContent = "attempt " + data.attempt + ": streaming";
        },
        end: (data, es) => {
          es.close();
          state.textContent = "Log complete: " + data.message + ".";
          if (data.attempts && data.attempt && data.attempts > data.attempt) {
            state.textContent += " A newer attempt exists: reload to follow it.";
          }
          setLive("live", "live");
        },
        failure: (data, es) => { es.close(); state.textContent = data.message; },
      });
    }
    connect(log.dataset.src);
  }

  function runPage() {
    const live = document.getElementById("run-live");
    if (!live) return;
    stream(live.dataset.src, {
      run: (data) => {
        const progress = document.querySelector("#run-progress progress");
        const finished = (data.progress.jobs.SUCCEEDED || 0) + (data.progress.jobs.FAILED || 0);
        if (progress) { progress.max = data.progress.total || 1; progress.value = finished; }
        const text = document.querySelector("[data-progress-text]");
        if (text) {
          text.innerHTML = "";
          const strong = document.createElement("strong");
          strong.textContent = String(finished);
          text.append(strong, ` of ${data.progress.total} jobs finished` +
            (data.progress.samples ? `, ${data.progress.samplesDone} of ${data.progress.samples} samples` : ""));
        }
        let newStage = false;
        for (const stage of data.stages) {
          const row = document.querySelector(`tr[data-stage="${CSS.escape(stage.stage)}"]`);
          if (!row) { newStage = true; continue; }
          row.querySelectorAll("td[data-count]").forEach((cell) => {
            cell.textContent = String(stage.counts[cell.dataset.count] || 0);
          });
          const bar = row.querySelector("progress");
          if (bar) { bar.max = stage.total; bar.value = stage.done; }
          const done = row.querySelector("[data-done]");
          if (done) done.textContent = `${stage.done}/${stage.total}`;
        }
        const ids = ["cost-title", "rs-title", "errors-title", "science-title"];
        refreshSections(newStage ? ["stages-body", ...ids] : ids);
        document.dispatchEvent(new CustomEvent("console:run-changed"));
      },
    });
  }

  function overview() {
    const page = document.body.dataset.page;
    let firstSummarySeen = false;
    if (!["queues", "jobs", "benchmarks"].includes(page)) return;
    stream("/console/events", {
      summary: (summary) => {
        onSummary(summary);
        // Why jobs wait is worded on the server: take the fresh tables when the counts move
        // (not for the first summary, which describes the page as it was rendered).
        if (page === "queues" && firstSummarySeen) refreshSections(["q-title", "ce-title"]);
        firstSummarySeen = true;
      },
      jobs: (changes) => {
        onJobs(changes);
        if (page === "benchmarks") refreshSections(["bench-live"]);
      },
      overflow: (data) => {
        const note = document.getElementById("jobs-live");
        if (note) note.textContent = data.message;
      },
    });
  }

  overview();
  jobLog();
  runPage();
  if (!document.querySelector("#log, #run-live") && !["queues", "jobs", "benchmarks"].includes(document.body.dataset.page)) {
    setLive("live", "");
  }
})();
