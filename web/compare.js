// The compare view: one metric of several runs overlaid on one chart (steps aligned with
// uPlot.join), with the runs' params and latest metrics side by side (differing rows marked).
import { api } from './api.js';
import { h, clear } from './dom.js';
import { createChart, chartCard, PALETTE } from './charts.js';
import { fmtNumber, statusBadge } from './format.js';
import { loadSelection } from './runs.js';

const PREFERRED = ['val_loss', 'loss', 'train_loss', 'val_accuracy', 'accuracy'];

export function compareView(root, query, ctx) {
  const view = {
    // the runs named in the URL, else the runs ticked in the runs table
    ids: query.has('runs') ? query.get('runs').split(',').filter(Boolean) : [...loadSelection()],
    metric: query.get('metric') || '',
    runs: [],
    chart: null,
    chartKey: '',
    timer: null,
    destroyed: false,
  };

  const metricSelect = h('select', { class: 'input', id: 'compare-metric', 'aria-label': 'Metric' });
  const addSelect = h('select', { class: 'input', 'aria-label': 'Add a run' });
  const chips = h('div', { class: 'chips' });
  const chartHolder = h('div');
  const tables = h('div', { class: 'compare-tables' });
  const error = h('div', { class: 'error', hidden: true });
  const empty = h('div', { class: 'empty', hidden: true },
    h('p', { class: 'empty-title', text: 'No runs to compare.' }),
    h('p', {}, 'Tick runs in the ', h('a', { href: '#/', text: 'runs table' }), ' and press \u201CCompare selected\u201D, or add one here.'));

  clear(root).appendChild(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Compare runs' })),
    h('div', { class: 'toolbar' }, h('label', { class: 'label', text: 'Metric' }), metricSelect,
      h('span', { class: 'spacer' }), addSelect),
    chips, error, empty, chartHolder, tables));

  function saveState() {
    const p = new URLSearchParams();
    if (view.ids.length) p.set('runs', view.ids.join(','));
    if (view.metric) p.set('metric', view.metric);
    history.replaceState(null, '', `#/compare?${p.toString().replace(/%2C/g, ',')}`);
  }

  function renderChips() {
    clear(chips);
    view.runs.forEach((r, i) => {
      const remove = h('button', { class: 'chip-x', type: 'button', title: 'Remove from the comparison', text: '\u00D7' });
      remove.addEventListener('click', () => {
        view.ids = view.ids.filter((x) => x !== r.id);
        view.chartKey = '';
        saveState();
        refresh();
      });
      chips.appendChild(h('span', { class: 'chip' },
        h('span', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` }),
        h('a', { href: `#/run/${encodeURIComponent(r.id)}`, text: r.name, title: r.id }), statusBadge(r.status), remove));
    });
  }

  function renderMetricSelect() {
    const keys = [...new Set(view.runs.flatMap((r) => r.metric_keys))].sort();
    if (!view.metric || !keys.includes(view.metric)) view.metric = PREFERRED.find((k) => keys.includes(k)) || keys[0] || '';
    const have = [...metricSelect.options].map((o) => o.value);
    if (have.join('\n') !== keys.join('\n')) {
      clear(metricSelect);
      for (const k of keys) metricSelect.appendChild(h('option', { value: k, text: k }));
    }
    metricSelect.value = view.metric;
    metricSelect.disabled = keys.length === 0;
  }

  function renderTables() {
    clear(tables);
    if (view.runs.length === 0) return;
    const table = (title, rowsOf) => {
      const keys = [...new Set(view.runs.flatMap((r) => Object.keys(rowsOf(r))))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
      if (!keys.length) return null;
      return h('section', { class: 'card' }, h('h2', { class: 'card-title', text: title }),
        h('div', { class: 'table-scroll' }, h('table', { class: 'kv compare' },
          h('thead', {}, h('tr', {}, h('th', { text: '' }), view.runs.map((r, i) =>
            h('th', {}, h('span', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` }), r.name)))),
          h('tbody', {}, keys.map((k) => {
            const vals = view.runs.map((r) => rowsOf(r)[k]);
            const differs = new Set(vals.map((v) => (v === undefined ? '\u0000' : String(v)))).size > 1;
            return h('tr', { class: differs ? 'differs' : '' }, h('th', { text: k }), vals.map((v) => h('td', { text: v ?? '' })));
          })))));
    };
    const latest = (r) => Object.fromEntries(Object.entries(r.metrics).map(([k, m]) => [k, fmtNumber(m.value)]));
    tables.append(table('Parameters', (r) => r.params) || '', table('Latest metrics', latest) || '');
  }

  async function renderChart() {
    const key = view.metric;
    const withMetric = view.runs.filter((r) => r.metric_keys.includes(key));
    if (!key || withMetric.length === 0) {
      if (view.chart) { view.chart.chart.destroy(); view.chart = null; }
      clear(chartHolder);
      view.chartKey = '';
      return;
    }
    const cols = await Promise.all(withMetric.map((r) => api.metrics(r.id, [key]).then((m) => m[key])));
    if (view.destroyed) return;
    const tables = cols.map((c) => [c.step, c.value]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const series = withMetric.map((r) => ({ label: r.name, color: PALETTE[view.runs.indexOf(r) % PALETTE.length] }));
    const chartKey = key + '\u0000' + withMetric.map((r) => r.id).join(',');
    if (view.chart && view.chartKey === chartKey) {
      view.chart.chart.update(data);
    } else {
      if (view.chart) view.chart.chart.destroy();
      clear(chartHolder);
      const card = chartCard(key, `${withMetric.length} of ${view.runs.length} runs have ${key}`);
      card.body.classList.add('metric-chart');
      card.body.dataset.metric = key;
      chartHolder.appendChild(card.card);
      view.chart = { card, chart: createChart(card.body, { series, data, height: 380 }) };
      view.chartKey = chartKey;
    }
  }

  async function fillAddSelect() {
    try {
      const runs = await api.runs();
      if (view.destroyed) return;
      clear(addSelect).appendChild(h('option', { value: '', text: 'Add a run\u2026' }));
      for (const r of runs.slice(0, 500))
        if (!view.ids.includes(r.id))
          addSelect.appendChild(h('option', { value: r.id, text: `${r.name} \u00B7 ${r.experiment} \u00B7 ${r.id.slice(0, 8)}` }));
    } catch { /* the picker is optional */ }
  }

  async function refresh() {
    clearTimeout(view.timer);
    empty.hidden = view.ids.length > 0;
    try {
      const results = await Promise.allSettled(view.ids.map((id) => api.run(id)));
      if (view.destroyed) return;
      view.runs = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      const missing = view.ids.filter((id, i) => results[i].status !== 'fulfilled');
      error.hidden = missing.length === 0;
      error.textContent = missing.length ? `Not in this store: ${missing.join(', ')}` : '';
      renderChips();
      renderMetricSelect();
      renderTables();
      await renderChart();
      const running = view.runs.some((r) => r.status === 'RUNNING');
      ctx.setLive(running);
      if (running) view.timer = setTimeout(refresh, 2000);
    } catch (e) {
      if (view.destroyed) return;
      error.hidden = false;
      error.textContent = `Could not load the runs: ${e.message}`;
      view.timer = setTimeout(refresh, 5000);
    }
  }

  metricSelect.addEventListener('change', () => { view.metric = metricSelect.value; saveState(); refresh(); });
  addSelect.addEventListener('change', () => {
    if (!addSelect.value) return;
    view.ids.push(addSelect.value);
    saveState();
    fillAddSelect();
    refresh();
  });

  fillAddSelect();
  refresh();
  return {
    destroy() {
      view.destroyed = true;
      clearTimeout(view.timer);
      if (view.chart) view.chart.chart.destroy();
    },
  };
}
