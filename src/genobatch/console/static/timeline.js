// The run timeline: one row per attempt, drawn as a handful of SVG paths (one per kind of segment)
// so that thousands of attempts stay cheap; hover and keyboard pick a row by arithmetic, not by
// listeners on each bar.
"use strict";

(function () {
  const holder = document.getElementById("timeline");
  const live = document.getElementById("run-live");
  const tip = document.getElementById("timeline-tip");
  if (!holder || !live) return;
  const SVG = "http://www.w3.org/2000/svg";
  const LABEL_W = 170;
  let data = null;
  let rows = [];
  let selected = -1;
  let geometry = null;

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
    return `${Math.floor(m / 60)}h ${m % 60}m`;
  }
  function fmtMoney(usd) {
    if (!usd) return "$0";
    if (usd >= 1) return "$" + usd.toFixed(2);
    return "$" + usd.toPrecision(3);
  }
  function fmtMiB(bytes) { return bytes === null || bytes === undefined ? "–" : (bytes / 1048576).toFixed(0) + " MiB"; }

  // Labels: the part of each job name after what every name shares (a run's prefix such as
  // "demo-20261129-141844-93b6-"), cut to fit the label column; the tip shows the whole name.
  function labeller(bars) {
    let prefix = bars.length > 1 ? bars[0].n : "";
    for (const bar of bars) while (prefix && !bar.n.startsWith(prefix)) prefix = prefix.slice(0, -1);
    const cut = Math.max(prefix.lastIndexOf("-"), prefix.lastIndexOf("_"), prefix.lastIndexOf("/")) + 1;
    return (bar) => {
      const name = bar.n.slice(cut) + (bar.a > 1 ? ` #${bar.a}` : "");
      return name.length > 26 ? name.slice(0, 25) + "…" : name;
    };
  }

  function el(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
  }

  function draw() {
    // Submission order, then start order: an array's children (submitted together) read as they ran.
    const bars = data.bars.slice().sort((a, b) => (a.q - b.q) || ((a.b || Infinity) - (b.b || Infinity)) || (a.a - b.a));
    rows = bars;
    const width = Math.max(320, holder.clientWidth || 800);
    const rowH = bars.length > 300 ? 4 : bars.length > 60 ? 8 : 16;
    const top = 22;
    const height = top + Math.max(1, bars.length) * rowH + 4;
    const span = Math.max(1, data.t1 - data.t0);
    const labels = rowH >= 16;
    const x0 = labels ? Math.min(LABEL_W, width / 3) : 0;
    const scale = (width - x0 - 8) / span;
    const x = (t) => x0 + (t - data.t0) * scale;
    geometry = { top, rowH, x0, scale };
    const label = labeller(bars);
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "timeline-svg" });
    svg.setAttribute("aria-hidden", "true");
    const paths = { deps: "", cap: "", run: "", ok: "", fail: "" };
    const h = Math.max(1, rowH - (rowH > 4 ? 3 : 1));
    bars.forEach((bar, i) => {
      const y = top + i * rowH;
      const seg = (kind, from, to) => {
        if (from === null || to === null || to <= from) return;
        paths[kind] += `M${x(from).toFixed(1)} ${y}h${Math.max(1, (to - from) * scale).toFixed(1)}v${h}h-${Math.max(1, (to - from) * scale).toFixed(1)}z`;
      };
      if (bar.r) seg("deps", bar.q, bar.r);
      seg("cap", bar.c, bar.b || data.now);
      if (bar.b) seg(bar.e ? (bar.s === "FAILED" ? "fail" : "ok") : "run", bar.b, bar.e || data.now);
      if (labels) {
        const text = el("text", { x: 4, y: y + h - 2, class: "tl-label" });
        text.textContent = label(bar);
        svg.append(text);
      }
    });
    for (const [kind, d] of Object.entries(paths)) if (d) svg.append(el("path", { d, class: "tl-" + kind }));
    // A time axis: start, middle and end of the run.
    for (const fraction of [0, 0.5, 1]) {
      const t = data.t0 + span * fraction;
      const label = el("text", { x: Math.min(width - 60, x(t) + 2), y: 12, class: "tl-axis" });
      label.textContent = "+" + fmtDuration(t - data.t0);
      svg.append(label, el("line", { x1: x(t), x2: x(t), y1: 16, y2: height, class: "tl-grid" }));
    }
    const marker = el("rect", { x: 0, y: 0, width, height: rowH, class: "tl-hover", visibility: "hidden" });
    svg.append(marker);
    holder.replaceChildren(svg);
    if (!bars.length) holder.textContent = "No attempt has been placed yet.";
    if (selected >= 0) show(Math.min(selected, rows.length - 1));
  }

  function show(index) {
    selected = index;
    const marker = holder.querySelector(".tl-hover");
    if (index < 0 || index >= rows.length) {
      tip.hidden = true;
      if (marker) marker.setAttribute("visibility", "hidden");
      return;
    }
    const bar = rows[index];
    if (marker) {
      marker.setAttribute("y", String(geometry.top + index * geometry.rowH));
      marker.setAttribute("visibility", "visible");
    }
    const depsWait = bar.r ? bar.r - bar.q : 0;
    const capWait = (bar.b || data.now) - bar.c;
    const ran = bar.b ? (bar.e || data.now) - bar.b : null;
    const cpu = bar.cpu === null || bar.cpu === undefined ? "–" : `${bar.cpu.toFixed(0)}% (${bar.cpus} vCPU requested)`;
    tip.replaceChildren();
    const title = document.createElement("strong");
    const link = document.createElement("a");
    link.href = "/console/jobs/" + encodeURIComponent(bar.id).replace(/%3A/g, ":");
    link.textContent = bar.n;
    title.append(link, ` attempt ${bar.a} · ${bar.d} · ${bar.s}${bar.x !== null && bar.x !== undefined ? " (exit " + bar.x + ")" : ""}`);
    const lines = [
      `waiting for dependencies ${fmtDuration(depsWait)}, for capacity ${fmtDuration(capWait)}`,
      `ran ${fmtDuration(ran)}${bar.e ? "" : bar.b ? " so far" : ""}`,
      `CPU ${cpu}; peak memory ${fmtMiB(bar.rss)} of ${bar.mem} MiB requested`,
      `attributed cost ${fmtMoney(bar.usd)}`,
    ];
    tip.append(title);
    for (const line of lines) {
      const div = document.createElement("div");
      div.textContent = line;
      tip.append(div);
    }
    tip.hidden = false;
  }

  holder.addEventListener("mousemove", (event) => {
    if (!geometry) return;
    const box = holder.querySelector("svg").getBoundingClientRect();
    const index = Math.floor((event.clientY - box.top - geometry.top) / geometry.rowH);
    if (index !== selected) show(index >= 0 && index < rows.length ? index : -1);
  });
  holder.addEventListener("keydown", (event) => {
    if (!rows.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      show(Math.max(0, Math.min(rows.length - 1, selected + (event.key === "ArrowDown" ? 1 : -1))));
    } else if (event.key === "Enter" && selected >= 0) {
      window.location.href = tip.querySelector("a").href;
    }
  });
  holder.addEventListener("focus", () => { if (selected < 0 && rows.length) show(0); });

  let loading = false;
  let again = false;
  let last = 0;
  let gap = 2000;
  function load() {
    // The stream says *that* the run changed; fetch at most every 2 s, and never spend more than a
    // quarter of the time waiting on the server (a timeline of thousands of attempts takes a while).
    if (loading) { again = true; return; }
    const wait = Math.max(0, last + gap - Date.now());
    loading = true;
    setTimeout(() => {
      const began = performance.now();
      fetch(live.dataset.timeline, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : Promise.reject(new Error(String(response.status)))))
        .then((json) => { data = json; draw(); })
        .catch(() => { holder.textContent = "The timeline could not be loaded; it retries on the next change."; })
        .finally(() => {
          loading = false;
          last = Date.now();
          gap = Math.max(2000, 4 * (performance.now() - began));
          if (again) { again = false; load(); }
        });
    }, wait);
  }
  document.addEventListener("console:run-changed", load);
  window.addEventListener("resize", () => { if (data) draw(); });
  load();
})();
