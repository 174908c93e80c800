"""The Jinja2 template of ``report.html``: markup, inline CSS and a few lines of inline JS.

Kept as a Python string rather than a package data file so every install (editable, wheel, zipapp)
has it without packaging rules. Nothing in it may point outside the file: the Content-Security-Policy
makes the browser refuse, and report a console error, if anything ever tries to fetch.
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="genobatch report">
<title>{{ info.title }} – genobatch run {{ info.run_id }}</title>
<style>
:root { --ok: #2e8b57; --bad: #d64541; --active: #3b7dd8; --muted: #5f6b7a; --line: #e3e6ea; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
       background: #f6f7f9; }
main { max-width: 1360px; margin: 0 auto; padding: 24px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header .meta { color: var(--muted); }
header .meta span + span::before { content: " · "; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
          margin: 18px 0; }
section h2 { margin: 0 0 12px; font-size: 18px; }
p.explain { color: var(--muted); max-width: 900px; margin: 4px 0 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .big { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--muted); font-size: 12px; }
ul.states { list-style: none; padding: 0; margin: 4px 0 0; font-size: 13px; }
ul.states li { display: inline-block; margin-right: 10px; }
.state-COMPLETED, .state-SUCCEEDED { color: var(--ok); }
.state-FAILED, .state-ABORTED { color: var(--bad); }
.state-RUNNING, .state-STARTING, .state-RUNNABLE { color: var(--active); }
.flex { display: flex; flex-wrap: wrap; gap: 28px; margin-top: 16px; }
.flex > div { max-width: 100%; overflow-x: auto; }
section { max-width: 100%; overflow-x: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: #f0f2f5; position: sticky; top: 0; }
td.num, th.num { text-align: right; }
tfoot td { font-weight: 650; border-top: 2px solid #c9ced6; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
th.group { text-align: center; border-bottom: 1px solid #c9ced6; }
td.advice { white-space: normal; min-width: 200px; max-width: 340px; }
#trace-table tr[data-status="FAILED"] td, #trace-table tr[data-status="ABORTED"] td { background: #fdf0ef; }
.trace-wrap { max-height: 640px; overflow: auto; border: 1px solid var(--line); }
.warn { color: var(--bad); font-weight: 600; }
.good { color: var(--ok); }
.chart svg { width: 100%; max-width: 1100px; height: auto; display: block; }
td.wrap { white-space: normal; min-width: 160px; max-width: 420px; }
/* A dozen metrics side by side: their headers wrap so the table fits 1400 px instead of scrolling. */
#results-table th { white-space: normal; vertical-align: bottom; min-width: 56px; }
#results-table th, #results-table td { padding: 4px 6px; }
.error { border-left: 3px solid var(--bad); padding: 2px 12px; margin: 10px 0; }
.error h3 { margin: 4px 0; font-size: 15px; }
pre.log-tail { background: #1d2430; color: #e8ecf1; padding: 8px 10px; border-radius: 6px; overflow-x: auto;
               max-height: 320px; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
.explain.method { font-style: italic; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin: 24px 0; }
</style>
</head>
<body>
<main>
<header>
  <h1>{{ info.title }}</h1>
  <div class="meta">
    <span>run <code id="run-id">{{ info.run_id }}</code></span>
    <span>created {{ created }}</span>
    <span>region {{ info.region }}</span>
    {% if info.pricing_source %}<span>prices: {{ info.pricing_source }}{% if info.pricing_date %}
      ({{ info.pricing_date }}){% endif %}</span>{% endif %}
  </div>
  {% for estimate in info.pricing_estimates %}<p class="warn price-estimate">{{ estimate }}</p>{% endfor %}
</header>

<section id="summary">
  <h2>Summary</h2>
  <div class="cards">
    <div class="card">
      <div class="label">Jobs</div>
      <div class="big"><span id="jobs-total" data-value="{{ s.jobs }}">{{ s.jobs }}</span></div>
      <ul class="states">
        {% for state, count in s.jobs_by_state.items() %}
        <li class="state-{{ state }}" data-state="{{ state }}">{{ state.lower() }}
          <span id="jobs-state-{{ state.lower() }}" data-value="{{ count }}">{{ count }}</span></li>
        {% endfor %}
      </ul>
      <div class="sub"><span id="attempts-total" data-value="{{ s.attempts }}">{{ s.attempts }}</span> attempts,
        {{ s.retried_jobs }} job(s) retried</div>
    </div>
    <div class="card">
      <div class="label">Wall time</div>
      <div class="big"><span id="wall-time" data-value="{{ s.wall_time_ms if s.wall_time_ms is not none else '' }}">
        {{- s.wall_time_ms | duration }}</span></div>
      <div class="sub">first submit to last completion</div>
    </div>
    <div class="card">
      <div class="label">Attributed cost</div>
      <div class="big"><span id="total-attributed" data-value="{{ s.attributed_cost | raw }}">
        {{- s.attributed_cost | money }}</span></div>
      <div class="sub">the jobs' share of the instances, by request</div>
    </div>
    <div class="card">
      <div class="label">Billed cost</div>
      <div class="big"><span id="total-billed" data-value="{{ s.billed_cost | raw }}">
        {{- s.billed_cost | money }}</span></div>
      <div class="sub">instances, used or idle · utilisation
        <span id="utilisation" data-value="{{ s.utilisation | raw }}">{{ s.utilisation | percent }}</span></div>
    </div>
    <div class="card">
      <div class="label">Cost per sample</div>
      <div class="big"><span id="cost-per-sample" data-value="{{ s.cost_per_sample | raw }}">
        {{- s.cost_per_sample | money }}</span></div>
      <div class="sub"><span id="samples-total" data-value="{{ s.samples }}">{{ s.samples }}</span> samples,
        <span id="sample-cost-total" data-value="{{ s.sample_cost_total | raw }}">
          {{- s.sample_cost_total | money }}</span>
        in all</div>
    </div>
  </div>
  <div class="flex">
    <div>
      <h3>Cost by category</h3>
      <table id="cost-categories">
        <thead><tr><th>Charge</th><th class="num">Cost USD</th><th class="num">Share</th>
          <th class="num">Per sample</th></tr></thead>
        <tbody>
        {% for c in s.categories %}
          <tr data-category="{{ c.name.lower() }}"><td>{{ c.name }}</td>
            <td class="num" data-value="{{ c.cost | raw }}">{{ c.cost | money }}</td>
            <td class="num">{{ c.share | percent }}</td><td class="num">{{ c.per_sample | money }}</td></tr>
        {% endfor %}
        </tbody>
      </table>
    </div>
    <div>
      <h3>Billed by compute environment</h3>
      <table id="billed">
        <thead><tr><th>Compute environment</th><th>Instance type</th><th class="num">Instance hours</th>
          <th class="num">Billed USD</th></tr></thead>
        <tbody>
        {% for b in billed %}
          <tr data-compute-environment="{{ b.compute_environment }}"><td>{{ b.compute_environment }}</td>
            <td>{{ b.instance_type or '–' }}</td><td class="num">{{ '%.2f' % (b.instance_seconds / 3600) }}</td>
            <td class="num" data-value="{{ b.billed_cost | raw }}">{{ b.billed_cost | money }}</td></tr>
        {% endfor %}
        </tbody>
      </table>
    </div>
    <div>
      <h3>CPU time</h3>
      <table id="cpu-time">
        <tbody>
          <tr><td>vCPU hours requested</td><td class="num">{{ '%.2f' % s.cpu_hours_requested }}</td></tr>
          <tr><td>CPU hours used</td><td class="num">{{ '%.2f' % s.cpu_hours_used }}</td></tr>
        </tbody>
      </table>
    </div>
  </div>
</section>

<section id="results">
  <h2>Results per sample</h2>
  {% if results is none %}
  <p class="explain">Results were not collected for this report.</p>
  {% elif not results.samples %}
  <p class="explain">No job of this run published results (a <code>genobatch:results</code> line in its log) and
    no job names a sample.</p>
  {% else %}
  {% for method in results.methods %}<p class="explain method">{{ method }}</p>{% endfor %}
  <div class="scroll">
  <table id="results-table" class="sortable">
    <thead><tr><th>Sample</th><th>Status</th><th class="num">Jobs done</th>
      {%- for c in result_columns %}<th class="num" data-metric="{{ c.name }}">{{ c.label }}</th>{% endfor -%}
      {% if result_failures %}<th>Failure</th>{% endif %}</tr></thead>
    <tbody>
    {% for row in result_rows %}
      <tr data-sample="{{ row.sample.sample }}" data-status="{{ row.sample.status }}">
        <td>{{ row.sample.sample }}</td><td class="state-{{ row.sample.status }}">{{ row.sample.status }}</td>
        <td class="num">{{ row.sample.jobs_done }}/{{ row.sample.jobs }}</td>
        {%- for cell in row.cells %}<td class="num" data-value="{{ cell.value | raw }}">{{ cell.text }}</td>
        {%- endfor %}
        {% if result_failures %}<td class="wrap">{{ row.sample.failures | join("; ") }}</td>{% endif %}</tr>
    {% endfor %}
    </tbody>
  </table>
  </div>
  {% endif %}
  {% if results is not none and results.problems %}
  <p class="warn">Results lines that could not be read:</p>
  <ul class="problems">{% for p in results.problems %}<li>{{ p }}</li>{% endfor %}</ul>
  {% endif %}
</section>

<section id="errors">
  <h2>Errors</h2>
  {% if results is none %}
  <p class="explain">Failed jobs were not collected for this report; the trace below marks failed attempts.</p>
  {% elif not results.errors %}
  <p class="explain good" id="no-errors">No job failed.</p>
  {% else %}
  <p class="explain">{{ results.errors | length }} job(s) failed. Each with its reason and the last lines of its
    last attempt's log (<code>genobatch logs JOB_ID</code> shows all of it).</p>
  {% for e in results.errors %}
  <div class="error" data-job-id="{{ e.job_id }}">
    <h3><span class="state-FAILED">FAILED</span> {{ e.name }}{% if e.sample %} · {{ e.sample }}{% endif %}</h3>
    <p><code>{{ e.job_id }}</code> · {{ e.attempts }} attempt(s) · exit code
      {{ e.exit_code if e.exit_code is not none else "–" }} · <span class="reason">{{ e.reason }}</span></p>
    {% if e.log_tail %}<pre class="log-tail">{{ e.log_tail }}</pre>{% else %}<p class="explain">(empty log)</p>
    {% endif %}
  </div>
  {% endfor %}
  {% endif %}
</section>

<section id="timeline">
  <h2>Timeline</h2>
  <p class="explain">One row per job. Grey: waiting, from submission (or the end of the previous attempt) until
    the attempt started. Coloured: running, green when the attempt succeeded, red when it failed.</p>
  <div class="chart" id="timeline-chart">{{ timeline_svg | safe }}</div>
</section>

<section id="resources">
  <h2>Resource use by job definition</h2>
  <p class="explain">Each point is one attempt, as a percentage of what it requested; boxes show the quartiles.
    The dashed line is the request: points far left of it are paid-for capacity left idle, red points
    right of it used more than they asked for.</p>
  <div class="chart" id="resources-chart">{{ resources_svg | safe }}</div>
</section>

<section id="right-sizing">
  <h2>Right-sizing</h2>
  <p class="explain">Recommended requests from the highest measurement over all attempts of a definition:
    vCPUs = ⌈peak CPUs × {{ policy.cpu_headroom }}⌉ (peak CPUs = %cpu ÷ 100 of the busiest attempt; never more
    than requested when the peak was within the request: a job held to its vCPUs cannot show it wanted more),
    memory = peak RSS × {{ policy.memory_headroom }} rounded up to {{ policy.memory_step_mib }} MiB.
    The saving estimates what the same attempts would have been attributed with the recommended request. As
    genobatch attributes cost, an attempt pays for its largest share of the instance (vCPUs, memory or GPUs),
    so shrinking a resource that is not the largest saves nothing; where a compute environment's instance shape
    is unknown, {{ (policy.cpu_cost_share * 100) | round | int }}% of the cost is taken to follow vCPUs and the
    rest memory. A negative saving means the definition asks for too little and should grow (the advised request
    costs that much more). In brackets: the saving as a share of the whole run's attributed cost
    ({{ s.attributed_cost | money }}), so a cheap definition reads as small even where its own cost would double;
    the shares add up to the total's.</p>
  <div class="scroll">
  <table id="right-sizing-table">
    <thead>
      <tr><th rowspan="2">Job definition</th><th rowspan="2" class="num">Attempts</th>
        <th colspan="3" class="group">vCPUs</th><th colspan="3" class="group">Memory (MiB)</th>
        <th rowspan="2" class="num">Attributed</th><th rowspan="2" class="num">Saving (share of run)</th>
        <th rowspan="2">Advice</th></tr>
      <tr><th class="num">requested</th><th class="num">peak</th><th class="num">advised</th>
        <th class="num">requested</th><th class="num">peak</th><th class="num">advised</th></tr>
    </thead>
    <tbody>
    {% for a in advice %}
      <tr data-definition="{{ a.job_definition }}">
        <td>{{ a.job_definition }}</td><td class="num">{{ a.attempts }}</td>
        <td class="num">{{ a.requested_cpus | span }}</td>
        <td class="num">{{ '%.2f' % a.peak_cpus if a.peak_cpus is not none else '–' }}</td>
        <td class="num" data-value="{{ a.recommended_cpus if a.recommended_cpus is not none else '' }}">
          {{- a.recommended_cpus if a.recommended_cpus is not none else '–' }}</td>
        <td class="num">{{ a.requested_memory_mib | span }}</td>
        <td class="num{{ ' warn' if a.over_memory_attempts else '' }}">
          {{- '%.0f' % a.peak_memory_mib if a.peak_memory_mib is not none else '–' }}</td>
        <td class="num" data-value="{{ a.recommended_memory_mib if a.recommended_memory_mib is not none else '' }}">
          {{- a.recommended_memory_mib if a.recommended_memory_mib is not none else '–' }}</td>
        <td class="num">{{ a.attributed_cost | money }}</td>
        <td class="num {{ 'good' if (a.saving or 0) > 0 else ('warn' if (a.saving or 0) < 0 else '') }}"
            data-value="{{ a.saving | raw }}">{{ a.saving | money }}{% if a.share_of(s.attributed_cost) is not none %}
          ({{ a.share_of(s.attributed_cost) | share }}){% endif %}</td>
        <td class="advice{{ ' warn' if a.over_memory_attempts else '' }}">{{ a.note }}</td>
      </tr>
    {% endfor %}
    </tbody>
    <tfoot><tr><td>All (net)</td><td class="num">{{ s.attempts }}</td><td colspan="6"></td>
      <td class="num">{{ s.attributed_cost | money }}</td>
      <td class="num" id="total-saving" data-value="{{ total_saving | raw }}">{{ total_saving | money }}
        {%- if total_saving is not none and s.attributed_cost %}
          ({{ (total_saving / s.attributed_cost) | share }}){% endif %}</td>
      <td></td></tr></tfoot>
  </table>
  </div>
</section>

<section id="sample-costs">
  <h2>Cost per sample</h2>
  <p class="explain" id="sample-cost-basis">{{ sample_cost_basis }}</p>
  <div class="scroll">
  <table id="sample-cost-table" class="sortable">
    <thead><tr><th>Sample</th><th class="num">Compute</th><th class="num">Storage</th><th class="num">Transfer</th>
      <th class="num">Total</th></tr></thead>
    <tbody>
    {% for row in samples %}
      <tr data-sample="{{ row.sample }}"><td>{{ row.sample }}</td>
        {% for value in (row.compute, row.storage, row.transfer, row.total) %}
        <td class="num" data-value="{{ value | raw }}">{{ value | money }}</td>
        {% endfor %}</tr>
    {% endfor %}
    </tbody>
    <tfoot><tr><td>Total ({{ samples | length }})</td>
      {% for c in s.categories %}<td class="num" id="sample-total-{{ c.name.lower() }}"
        data-value="{{ c.cost | raw }}">{{ c.cost | money }}</td>{% endfor %}
      <td class="num" id="sample-total-total" data-value="{{ s.sample_cost_total | raw }}">
        {{- s.sample_cost_total | money }}</td></tr></tfoot>
  </table>
  </div>
</section>

<section id="trace">
  <h2>Trace</h2>
  <p class="explain">One row per attempt; click a column to sort. The same data, unabridged and in raw units,
    is in <code>trace.tsv</code> and <code>report.xlsx</code>.</p>
  <div class="trace-wrap">
  <table id="trace-table" class="sortable">
    <thead><tr>{% for h in trace_headers %}<th{% if h.numeric %} class="num"{% endif %}>{{ h.label }}</th>
      {%- endfor %}</tr></thead>
    <tbody>
    {% for row in trace_rows %}
      <tr data-task-id="{{ row.task_id }}" data-attempt="{{ row.attempt }}" data-status="{{ row.status }}">
        {%- for cell in row.cells %}<td{% if cell.numeric %} class="num"{% endif %}
          {%- if cell.sort is not none %} data-sort="{{ cell.sort }}"{% endif %}>{{ cell.text }}</td>{% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  </div>
</section>
<footer>Generated by genobatch from run {{ info.run_id }}. Times in UTC.</footer>
</main>
<script>
// Click-to-sort for tables marked "sortable": numbers by their data-sort value, text otherwise.
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[column];
        var sort = cell.getAttribute("data-sort") || cell.getAttribute("data-value");
        return sort !== null && sort !== "" && !isNaN(sort) ? Number(sort) : cell.textContent.trim();
      };
      // Text compares naturally: sample2 before sample10.
      var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = typeof x === "number" && typeof y === "number" ? x - y : collator.compare(String(x), String(y));
        return order * (ascending ? 1 : -1);
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
// Marks that the script ran to its end: a test reading the rendered DOM knows no error stopped it.
document.documentElement.setAttribute("data-script-ok", "1");
</script>
</body>
</html>
"""
