"""The Jinja2 template of ``benchmark.html``: markup and inline CSS, no script.

A Python string rather than a package data file, so every install has it without packaging rules.
Nothing in it may point outside the file: the Content-Security-Policy lets the browser load only
data: images and inline style, and would log a console error for anything else.
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="genobatch benchmark report">
<title>{{ results.plan_name }} – genobatch benchmark {{ results.run_id }}</title>
<style>
:root { --ok: #2e8b57; --bad: #d64541; --muted: #5f6b7a; --line: #e3e6ea; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430;
       background: #f6f7f9; }
main { max-width: 1320px; margin: 0 auto; padding: 24px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header .meta { color: var(--muted); }
header .meta span + span::before { content: " · "; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 18px 0; }
section h2 { margin: 0 0 12px; font-size: 18px; }
p.explain { color: var(--muted); max-width: 960px; margin: 4px 0 12px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap;
         vertical-align: top; }
th { background: #f0f2f5; }
td.num, th.num { text-align: right; }
td.wrap { white-space: normal; min-width: 220px; }
.identical { color: var(--ok); font-weight: 600; }
.different, .missing { color: var(--bad); font-weight: 600; }
ul.verdicts { list-style: none; margin: 0; padding: 0; }
pre.records { margin: 4px 0 8px; padding: 6px 8px; background: #f6f7f9; border: 1px solid var(--line);
              font-size: 12px; max-width: 900px; overflow-x: auto; }
.chart img { width: 100%; max-width: 1200px; height: auto; display: block; margin-bottom: 16px; }
dl.method dt { font-weight: 600; margin-top: 10px; }
dl.method dd { margin: 2px 0 0; max-width: 960px; }
p.caveat { border-left: 3px solid #d4a017; background: #fff8e1; padding: 6px 10px; max-width: 960px; }
/* The 23-column table: headers wrap to a few words a line, the target column stays put while it scrolls,
   free text wraps instead of widening the table. */
table.summary th { white-space: normal; min-width: 64px; max-width: 120px; vertical-align: bottom; }
table.summary th:first-child, table.summary td:first-child { position: sticky; left: 0; background: #fff;
  box-shadow: 1px 0 0 var(--line); }
table.summary th:first-child { background: #f0f2f5; }
table.summary td.text { white-space: normal; min-width: 90px; max-width: 260px; }
table.summary tbody tr:nth-child(even) td { background: #fafbfc; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin: 24px 0; }
</style>
</head>
<body>
<main>
<header>
  <h1>{{ results.plan_name }}</h1>
  <div class="meta">
    <span>benchmark run <code id="run-id">{{ results.run_id }}</code></span>
    <span>created {{ created }}</span>
    <span id="workload" data-units="{{ results.workload_units | raw }}" data-unit="{{ results.work_unit }}">
      workload: {{ results.workload_name }} = {{ results.workload_units | figure }} {{ results.work_unit }}</span>
    <span>overhead per instance run <span id="overhead-s" data-value="{{ results.overhead_s | raw }}">
      {{- results.overhead_s | figure }}</span> s</span>
  </div>
</header>

<section id="recommendation"{{ recommendation_attributes | xmlattr }}>
  <h2>Recommendation for {{ recommendation.workloads }} × {{ results.workload_name }}</h2>
  {% if caveat %}<p class="caveat">{{ caveat }}</p>{% endif %}
  <p>Cheapest within
    {% if recommendation.deadline_h is not none %}the {{ recommendation.deadline_h | figure }} h deadline{% else %}
    any deadline{% endif %}:
    <strong id="cheapest">{{ recommendation.cheapest_within_deadline or "none meets it" }}</strong>.
    Fastest within
    {% if recommendation.budget_usd is not none %}the {{ recommendation.budget_usd | money }} budget{% else %}
    any budget{% endif %}:
    <strong id="fastest">{{ recommendation.fastest_within_budget or "none fits it" }}</strong>.</p>
  {% for sentence in recommendation.explanation %}
  <p class="sentence">{{ sentence }}</p>
  {% endfor %}
</section>

{% if comparisons %}
<section id="ratios">
  <h2>Time and cost against {{ comparisons_reference }}</h2>
  <p class="explain">Each target's median run time and cost per workload ÷ the first target's, per tool and
    configuration, each target at its own price.</p>
  <ul>
  {% for line in comparisons %}
    <li class="ratio">{{ line }}</li>
  {% endfor %}
  </ul>
</section>
{% endif %}

<section id="results">
  <h2>Results by pricing region</h2>
  <p class="explain">Cheapest per {{ results.workload_name }} first. Figures are the median over repeats, with the
    range (low–high) where repeats differ. Per-unit columns are per {{ scale.label }}. The target column stays in
    view while the table scrolls sideways.</p>
  {% if caveat %}<p class="caveat" id="extrapolation-caveat">{{ caveat }}</p>{% endif %}
  {% for region in regions %}
  <h3>{{ region.name }}</h3>
  <div class="scroll">
  <table class="summary" data-region="{{ region.name }}">
    <thead><tr>{% for h in headers %}<th{% if h.numeric %} class="num"{% endif %}>{{ h.label }}</th>{% endfor %}
    </tr></thead>
    <tbody>
    {% for row in region.rows %}
      <tr class="summary-row"{{ row.attributes | xmlattr }}>
        {% for c in row.cells %}
        <td{% if c.numeric %} class="num" data-value="{{ c.value }}"{% else %} class="text"{% endif %}>{{ c.text }}</td>
        {% endfor %}
      </tr>
    {% endfor %}
    </tbody>
  </table>
  </div>
  {% else %}
  <p>No results.</p>
  {% endfor %}
</section>

<section id="charts">
  <h2>Charts</h2>
  <p class="explain">Bars are medians over repeats, whiskers the range; colours are tools. Measured throughput is
    work ÷ instance run time (wall clock, start-up included); tool-reported is the tool's own rate.</p>
  <div class="chart">
  {% for chart in charts %}
    <img id="chart-{{ chart.name }}" alt="{{ chart.title }}" src="{{ chart.uri }}">
  {% endfor %}
  </div>
</section>

<section id="equivalence">
  <h2>Equivalence of outputs</h2>
  <p class="explain">Two levels, reported separately. <b>Identical records</b>: each output is compared with the
    reference target's after removing provenance header lines only (file date, source, a tool's version and
    command-line lines, @PG) and decompressing; present on every target with equal normalised digests.
    <b>Same calls</b> (VCF/BCF only): the records are equal as VCF content - QUAL 60 = 60.00000, INFO keys and
    FILTER values in any order - which is what "identical variants" claims. <i>Compared</i> says which files
    were paired: shard with the same shard when every target split the data set the same way, else every
    shard's file merged, records sorted by position.</p>
  {% if equivalence %}
  <div class="scroll">
  <table id="equivalence-table">
    <thead><tr><th>tool</th><th>output</th><th>compared</th><th>identical records</th><th>same calls</th>
      <th>reference target</th><th>targets</th></tr></thead>
    <tbody>
    {% for e in equivalence %}
      <tr class="equivalence-row" data-tool="{{ e.result.tool }}" data-output="{{ e.result.output }}"
          data-identical="{{ 'true' if e.result.identical else 'false' }}"
          data-same-calls="{{ '' if e.result.calls is none else ('true' if e.result.calls.same else 'false') }}">
        <td>{{ e.result.tool }}</td><td><code>{{ e.result.output }}</code></td>
        <td class="wrap">{{ e.result.comparison }}</td>
        <td class="{{ 'identical' if e.result.identical else 'different' }}">
          {{- 'identical' if e.result.identical else 'different' }}</td>
        {% if e.result.calls is none %}
        <td>–</td>
        {% else %}
        <td class="{{ 'identical' if e.result.calls.same else 'different' }}">
          {{- 'same calls' if e.result.calls.same else 'different calls' }}
          {{- ' (phase ignored)' if e.result.calls.phase_ignored else '' }}</td>
        {% endif %}
        <td>{{ e.result.reference_target }}</td>
        <td class="wrap"><ul class="verdicts">
        {% for item in e.verdicts %}
          <li{{ item.attributes | xmlattr }}>{{ item.v.target }}:
            <span class="{{ item.v.verdict.split(' ')[0] }}">{{ item.v.verdict }}</span>
            {% if item.v.records is not none %}({{ item.v.records }} records){% endif %}
            {% if item.v.verdict == "missing" and item.d %}
            – no such output here; {{ e.result.reference_target }} has {{ item.d.only_in_reference }} record(s)
            {% elif item.v.verdict == "missing on reference" and item.d %}
            – only this target has it, {{ item.d.only_in_target }} record(s)
            {% elif item.d %}
            – {{ item.d.differing_records }} differing, {{ item.d.only_in_reference }} only in
            {{ e.result.reference_target }}, {{ item.d.only_in_target }} only in {{ item.v.target }}
            {% endif %}
            {% if item.d and item.d.first %}
            <pre class="records">
{% for ours, theirs in item.d.first %}- {{ ours }}
+ {{ theirs }}
{% endfor %}</pre>
            {% endif %}
            {% if item.v.calls_verdict %}
            <div class="calls">calls: <span class="{{ item.calls_class }}">
              {{- item.v.calls_verdict }}</span>
            {% if item.v.calls is not none %}({{ item.v.calls }} calls){% endif %}
            {% if item.c and item.v.calls_verdict == "different calls" %}
            – {{ item.c.differing_records }} differing, {{ item.c.only_in_reference }} only in
            {{ e.result.reference_target }}, {{ item.c.only_in_target }} only in {{ item.v.target }}
            {% endif %}
            {% if item.c and item.c.first %}
            <pre class="records calls">
{% for ours, theirs in item.c.first %}- {{ ours }}
+ {{ theirs }}
{% endfor %}</pre>
            {% endif %}
            </div>
            {% endif %}
          </li>
        {% endfor %}
        </ul></td>
      </tr>
    {% endfor %}
    </tbody>
  </table>
  </div>
  {% else %}
  <p>No outputs were compared.</p>
  {% endif %}
</section>

<section id="shards">
  <h2>Shards</h2>
  <details>
    <summary>{{ shards | length }} shards (one array child each)</summary>
    <div class="scroll">
    <table id="shards-table">
      <thead><tr><th>tool</th><th>configuration</th><th>target</th><th class="num">repeat</th>
        <th class="num">shard</th><th>job id</th><th>status</th><th class="num">seconds</th>
        <th class="num">work</th><th>metrics</th></tr></thead>
      <tbody>
      {% for s in shards %}
        <tr data-job-id="{{ s.job_id }}" data-status="{{ s.status }}"><td>{{ s.tool }}</td>
          <td>{{ s.configuration }}</td><td>{{ s.target }}</td><td class="num">{{ s.repeat }}</td>
          <td class="num">{{ s.shard }}</td><td><code>{{ s.job_id }}</code></td><td>{{ s.status }}</td>
          <td class="num" data-value="{{ s.seconds | raw }}">
            {{- s.seconds | figure if s.seconds is not none else '–' }}</td>
          <td class="num" data-value="{{ s.work | raw }}">{{ s.work | figure }}</td>
          <td>{% for k, v in s.metrics | dictsort %}{{ k }}={{ v | figure }}{% if not loop.last %}, {% endif %}
            {% endfor %}</td></tr>
      {% endfor %}
      </tbody>
    </table>
    </div>
  </details>
</section>

<section id="method">
  <h2>Method</h2>
  <dl class="method">
  {% for heading, text in method %}
    <dt>{{ heading }}</dt><dd>{{ text }}</dd>
  {% endfor %}
  </dl>
</section>

<footer>genobatch benchmark report · plan {{ results.plan_name }} · run {{ results.run_id }}</footer>
</main>
</body>
</html>
"""
