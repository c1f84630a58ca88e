// A run's page: overview, params, tags, a chart per metric, the loss plot, per-rank logs and
// artifacts. While the run is RUNNING it polls and updates everything in place (charts keep their
// zoom, a log scrolled to the bottom follows new lines).
import { api, artifactURL, getText } from './api.js';
import { h, clear, setText } from './dom.js';
import { createChart, chartCard, seriesData } from './charts.js';
import { fmtTime, fmtDuration, fmtNumber, fmtBytes, runDuration, statusBadge } from './format.js';

const LOG_TAIL = 256 * 1024;

// Every file of the run: file artifacts and the files inside artifact directories.
// (a file recorded on its own and inside a recorded directory is listed once)
function runFiles(run) {
  const files = new Map();
  for (const a of run.artifacts || []) {
    if (a.files) {
      for (const f of a.files) if (!files.has(f.path)) files.set(f.path, { path: f.path, rel: `${a.name}/${f.rel}`, inner: f.rel, size: f.size });
    } else if (a.exists && a.size != null && !files.has(a.path)) {
      files.set(a.path, { path: a.path, rel: a.name, inner: a.name, size: a.size });
    }
  }
  return [...files.values()];
}

const isLog = (f) => /(^|\/)logs\/[^/]+$/.test(f.inner) || /\.log$/.test(f.inner);
const rankOf = (f) => { const m = /rank[-_]?(\d+)/.exec(f.inner); return m ? Number(m[1]) : Infinity; };

function kv(title, map, emptyText) {
  const entries = Object.entries(map || {}).sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
  return h('section', { class: 'card' }, h('h2', { class: 'card-title', text: title }),
    entries.length === 0 ? h('p', { class: 'muted', text: emptyText })
      : h('table', { class: 'kv' }, h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', { text: k }), h('td', { text: v }))))));
}

export function runView(root, id, ctx) {
  const view = { run: null, charts: new Map(), timer: null, destroyed: false, logFile: null, artifactsKey: '' };

  const title = h('h1', { class: 'run-name' });
  const badge = h('span');
  const crumbs = h('nav', { class: 'crumbs' });
  const idLine = h('div', { class: 'run-id' });
  const overview = h('div');
  const sideCards = h('div', { class: 'side-cards' });
  const chartsGrid = h('div', { class: 'charts-grid', id: 'charts' });
  const noMetrics = h('p', { class: 'muted', text: 'No metrics logged yet.', hidden: true });
  const lossPlot = h('section', { class: 'card', hidden: true });
  const logsCard = h('section', { class: 'card logs', hidden: true });
  const artifactsCard = h('section', { class: 'card' });
  const error = h('div', { class: 'error', hidden: true });

  clear(root).appendChild(h('div', { class: 'page' },
    crumbs,
    h('div', { class: 'page-head' }, title, badge),
    idLine,
    error,
    h('div', { class: 'run-top' }, overview, sideCards),
    h('h2', { class: 'section-title', text: 'Metrics' }),
    noMetrics,
    chartsGrid,
    lossPlot,
    logsCard,
    artifactsCard));

  function renderHeader(run) {
    setText(title, run.name);
    document.title = `${run.name} \u00B7 krill runs`;
    clear(badge).appendChild(statusBadge(run.status));
    clear(crumbs).append(h('a', { href: '#/', text: 'Runs' }), h('span', { class: 'sep', text: '/' }),
      h('a', { href: `#/?experiment=${encodeURIComponent(run.experiment)}`, text: run.experiment }),
      h('span', { class: 'sep', text: '/' }), h('span', { text: run.name }));
    clear(idLine).append(h('code', { text: run.id }),
      h('a', { class: 'btn btn-small', href: `#/compare?runs=${encodeURIComponent(run.id)}`, text: 'Compare\u2026' }));
  }

  function renderOverview(run) {
    const rows = [
      ['Experiment', run.experiment],
      ['Status', statusBadge(run.status)],
      ['Started', fmtTime(run.start_time)],
      ['Ended', run.end_time ? fmtTime(run.end_time) : '\u2014'],
      ['Duration', fmtDuration(runDuration(run))],
      ['Host', `${run.host} (pid ${run.pid})`],
      ['Command', h('code', { class: 'cmd', text: run.command_line })],
      ['krill', run.krill_version],
      ['Git commit', run.git_commit ? h('code', { text: run.git_commit }) : '\u2014'],
    ];
    clear(overview).appendChild(h('section', { class: 'card' }, h('h2', { class: 'card-title', text: 'Overview' }),
      h('dl', { class: 'overview' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]))));
    const latest = {};
    for (const [k, m] of Object.entries(run.metrics || {})) latest[k] = `${fmtNumber(m.value)}  (step ${m.step})`;
    clear(sideCards).append(kv('Parameters', run.params, 'No parameters.'), kv('Tags', run.tags, 'No tags.'),
      kv('Latest metrics', latest, 'No metrics.'));
  }

  function renderArtifacts(run) {
    const key = JSON.stringify(run.artifacts);
    if (key === view.artifactsKey) return;
    view.artifactsKey = key;
    const files = runFiles(run);

    // the loss plot (loss.png, written by krill train at the end of a run)
    const loss = files.find((f) => /(^|\/)loss\.png$/.test(f.inner));
    lossPlot.hidden = !loss;
    clear(lossPlot);
    if (loss)
      lossPlot.append(h('h2', { class: 'card-title', text: 'Loss plot' }),
        h('img', { class: 'loss-png', id: 'loss-png', alt: `Loss plot of run ${run.name}`, src: artifactURL(run.id, loss.path) + `&v=${loss.size}` }));

    // per-rank logs
    const logs = files.filter(isLog).sort((a, b) => rankOf(a) - rankOf(b) || a.rel.localeCompare(b.rel));
    logsCard.hidden = logs.length === 0;
    clear(logsCard);
    if (logs.length) {
      if (!view.logFile || !logs.some((f) => f.path === view.logFile)) view.logFile = logs[0].path;
      const tabs = h('div', { class: 'tabs', role: 'tablist' });
      const pre = h('pre', { class: 'log', id: 'log' });
      for (const f of logs) {
        const tab = h('button', { class: 'tab' + (f.path === view.logFile ? ' active' : ''), type: 'button', role: 'tab',
                                  text: f.inner.split('/').pop(), title: f.rel });
        tab.addEventListener('click', () => {
          view.logFile = f.path;
          for (const t of tabs.children) t.classList.toggle('active', t === tab);
          loadLog(true);
        });
        tabs.appendChild(tab);
      }
      logsCard.append(h('h2', { class: 'card-title', text: 'Logs' }), tabs, pre);
      loadLog(true);
    }

    // everything
    clear(artifactsCard).appendChild(h('h2', { class: 'card-title', text: 'Artifacts' }));
    if (!run.artifacts || run.artifacts.length === 0) {
      artifactsCard.appendChild(h('p', { class: 'muted', text: 'No artifacts recorded.' }));
      return;
    }
    const list = h('ul', { class: 'artifacts' });
    const listed = new Set(run.artifacts.flatMap((a) => (a.files || []).map((f) => f.path)));
    for (const a of run.artifacts) {
      if (!a.files && listed.has(a.path)) continue;   // shown inside its directory
      const item = h('li', {});
      if (a.files) {
        item.append(h('span', { class: 'artifact-dir', text: `${a.path}/` }),
          a.exists ? '' : h('span', { class: 'muted', text: ' (missing)' }));
        const inner = h('ul', {});
        for (const f of a.files)
          inner.appendChild(h('li', {}, h('a', { href: artifactURL(run.id, f.path), target: '_blank', rel: 'noopener', text: f.rel }),
            h('span', { class: 'muted size', text: fmtBytes(f.size) })));
        if (a.truncated) inner.appendChild(h('li', { class: 'muted', text: '\u2026 (more files not listed)' }));
        item.appendChild(inner);
      } else if (a.exists) {
        item.append(h('a', { href: artifactURL(run.id, a.path), target: '_blank', rel: 'noopener', text: a.path }),
          h('span', { class: 'muted size', text: fmtBytes(a.size) }));
      } else {
        item.append(h('span', { text: a.path }), h('span', { class: 'muted', text: ' (missing)' }));
      }
      list.appendChild(item);
    }
    artifactsCard.appendChild(list);
  }

  async function loadLog(scrollToEnd) {
    const pre = logsCard.querySelector('pre.log');
    if (!pre || !view.logFile) return;
    const atEnd = scrollToEnd || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    try {
      const { text, size } = await getText(artifactURL(view.run.id, view.logFile, LOG_TAIL));
      const shown = size > LOG_TAIL ? `\u2026 (last ${fmtBytes(LOG_TAIL)} of ${fmtBytes(size)})\n` + text : text;
      if (pre.textContent !== shown) pre.textContent = shown || '(empty)';
    } catch (e) {
      pre.textContent = `Could not read the log: ${e.message}`;
    }
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function renderMetrics(metrics) {
    const keys = Object.keys(metrics).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    noMetrics.hidden = keys.length > 0;
    for (const key of keys) {
      const cols = metrics[key];
      const data = seriesData(cols);
      const n = cols.step.length;
      const last = n ? `${fmtNumber(cols.value[n - 1])} at step ${cols.step[n - 1]}` : 'no points';
      let c = view.charts.get(key);
      if (!c) {
        const card = chartCard(key, `${n} points \u00B7 ${last}`);
        card.body.dataset.metric = key;
        card.body.classList.add('metric-chart');
        chartsGrid.appendChild(card.card);
        c = { card, chart: createChart(card.body, { series: [{ label: key }], data }) };
        view.charts.set(key, c);
      } else {
        c.chart.update(data);
        setText(c.card.meta, `${n} points \u00B7 ${last}`);
      }
    }
  }

  async function refresh(first) {
    try {
      const [run, metrics] = await Promise.all([api.run(id), api.metrics(id)]);
      if (view.destroyed) return;
      error.hidden = true;
      const wasRunning = view.run && view.run.status === 'RUNNING';
      view.run = run;
      renderHeader(run);
      renderOverview(run);
      renderArtifacts(run);
      renderMetrics(metrics);
      if (!first && wasRunning) loadLog(false);
      ctx.setLive(run.status === 'RUNNING');
      if (first) {
        window.__krill = Object.assign(window.__krill || {}, { runPageMs: performance.now() });
        document.body.dataset.runRendered = run.id;
      }
      if (run.status === 'RUNNING') view.timer = setTimeout(() => refresh(false), 2000);
    } catch (e) {
      if (view.destroyed) return;
      error.hidden = false;
      error.textContent = e.status === 404 ? `No run ${id} in this store.` : `Could not load the run: ${e.message}`;
      if (e.status !== 404) view.timer = setTimeout(() => refresh(first), 5000);
    }
  }

  refresh(true);
  return {
    destroy() {
      view.destroyed = true;
      clearTimeout(view.timer);
      for (const c of view.charts.values()) c.chart.destroy();
    },
  };
}
