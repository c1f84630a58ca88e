// The runs table: sortable by any column (metrics and params included), filtered by experiment,
// status and a text query, with a selection to compare. Updated in place while runs are RUNNING.
import { api } from './api.js';
import { h, clear, setText } from './dom.js';
import { fmtTime, fmtAgo, fmtDuration, fmtNumber, runDuration, statusBadge, STATUSES } from './format.js';

const SELECTED_KEY = 'krill.selected';

export function loadSelection() {
  try { return new Set(JSON.parse(sessionStorage.getItem(SELECTED_KEY) || '[]')); } catch { return new Set(); }
}
function saveSelection(sel) { sessionStorage.setItem(SELECTED_KEY, JSON.stringify([...sel])); }

// ---- the text filter: "word", "key=value", "key!=value", "key~part", "key<0.1", "key>=3" ----
const TERM = /^([^=!<>~\s]+)(=|!=|<=|>=|<|>|~)(.*)$/;

function fieldValue(run, key) {
  if (run.params && key in run.params) return run.params[key];
  if (run.metrics && key in run.metrics) return run.metrics[key].value;
  if (run.tags && key in run.tags) return run.tags[key];
  if (['name', 'id', 'experiment', 'status', 'host'].includes(key)) return run[key];
  return undefined;
}

export function parseFilter(text) {
  const terms = [];
  for (const raw of text.trim().split(/\s+/)) {
    if (!raw) continue;
    const m = TERM.exec(raw);
    if (m) terms.push({ key: m[1], op: m[2], value: m[3] });
    else terms.push({ text: raw.toLowerCase() });
  }
  return terms;
}

function haystack(run) {
  if (!run._haystack) {
    const parts = [run.name, run.id, run.experiment, run.status];
    for (const [k, v] of Object.entries(run.params || {})) parts.push(`${k}=${v}`);
    for (const [k, v] of Object.entries(run.tags || {})) parts.push(`${k}=${v}`);
    run._haystack = parts.join('\n').toLowerCase();
  }
  return run._haystack;
}

function termMatches(run, t) {
  if (t.text !== undefined) return haystack(run).includes(t.text);
  const v = fieldValue(run, t.key);
  if (v === undefined || v === null) return t.op === '!=';
  const num = Number(v), want = Number(t.value);
  const numeric = t.value !== '' && !isNaN(num) && !isNaN(want);
  switch (t.op) {
    case '=': return numeric ? num === want : String(v) === t.value;
    case '!=': return numeric ? num !== want : String(v) !== t.value;
    case '~': return String(v).toLowerCase().includes(t.value.toLowerCase());
    case '<': return numeric && num < want;
    case '<=': return numeric && num <= want;
    case '>': return numeric && num > want;
    case '>=': return numeric && num >= want;
  }
  return false;
}

// ---- columns ----
function baseColumns(view) {
  return [
    { id: 'sel', label: '', sortable: false, cls: 'col-sel',
      create: (td, r) => {
        td.appendChild(h('input', { type: 'checkbox', class: 'sel', 'aria-label': 'Select run for comparison', dataset: { id: r.id } }));
      },
      update: (td, r) => { td.firstChild.checked = view.selected.has(r.id); } },
    { id: 'status', label: 'Status', value: (r) => r.status,
      update: (td, r) => {
        const b = td.firstChild;
        if (!b || b.textContent !== r.status) { clear(td); td.appendChild(statusBadge(r.status)); }
      } },
    { id: 'name', label: 'Name', value: (r) => r.name, cls: 'col-name',
      create: (td, r) => { td.appendChild(h('a', { class: 'run-link', href: `#/run/${encodeURIComponent(r.id)}`, title: r.id })); },
      update: (td, r) => { setText(td.firstChild, r.name); } },
    { id: 'experiment', label: 'Experiment', value: (r) => r.experiment, text: (r) => r.experiment },
    { id: 'start', label: 'Started', value: (r) => r.start_time, cls: 'num',
      update: (td, r, now) => { setText(td, fmtAgo(r.start_time, now)); td.title = fmtTime(r.start_time); } },
    { id: 'duration', label: 'Duration', value: (r) => runDuration(r), cls: 'num', text: (r, now) => fmtDuration(runDuration(r, now)) },
  ];
}

function dynamicColumns(runs) {
  const metrics = new Set(), params = new Set();
  for (const r of runs) {
    for (const k in r.metrics) metrics.add(k);
    for (const k in r.params) params.add(k);
  }
  const byName = (a, b) => a.localeCompare(b, undefined, { numeric: true });
  const cols = [];
  for (const k of [...metrics].sort(byName))
    cols.push({ id: `m:${k}`, label: k, group: 'Metrics', cls: 'num metric',
                value: (r) => (r.metrics[k] ? r.metrics[k].value : undefined),
                text: (r) => (r.metrics[k] ? fmtNumber(r.metrics[k].value) : ''),
                title: (r) => (r.metrics[k] ? `${k} = ${r.metrics[k].value} at step ${r.metrics[k].step}` : '') });
  for (const k of [...params].sort(byName))
    cols.push({ id: `p:${k}`, label: k, group: 'Parameters', cls: 'param',
                value: (r) => r.params[k], text: (r) => r.params[k] ?? '' });
  return cols;
}

function compareValues(a, b) {
  const an = a === undefined || a === null || a === '', bn = b === undefined || b === null || b === '';
  if (an || bn) return an && bn ? 0 : an ? 1 : -1;   // missing values last, whatever the direction
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = Number(a), y = Number(b);
  if (!isNaN(x) && !isNaN(y)) return x - y;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

// ---- the view ----
export function runsView(root, query, ctx) {
  const view = {
    runs: [],
    selected: loadSelection(),
    experiment: query.get('experiment') || '',
    status: query.get('status') || '',
    text: query.get('q') || '',
    sort: query.get('sort') || '-start',
    columns: [],
    columnKey: '',
    rows: new Map(),   // run id -> tr
    timer: null,
    destroyed: false,
    firstRender: true,
  };

  const expSelect = h('select', { class: 'input', 'aria-label': 'Experiment' }, h('option', { value: '', text: 'All experiments' }));
  const statusSelect = h('select', { class: 'input', 'aria-label': 'Status' }, h('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => h('option', { value: s, text: s })));
  statusSelect.value = view.status;
  const textInput = h('input', { class: 'input filter', type: 'search', value: view.text, spellcheck: false,
    placeholder: 'Filter: text, lr=0.01, val_loss<0.1, optimizer~adam', 'aria-label': 'Filter runs' });
  const count = h('span', { class: 'count' });
  const compareBtn = h('button', { class: 'btn btn-primary', type: 'button' });
  const clearBtn = h('button', { class: 'btn', type: 'button', text: 'Clear selection' });
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table', { class: 'runs-table', id: 'runs-table' }, thead, tbody);
  const empty = h('div', { class: 'empty', hidden: true });
  const error = h('div', { class: 'error', hidden: true });

  clear(root).appendChild(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', { text: 'Runs' }), count),
    h('div', { class: 'toolbar' }, expSelect, statusSelect, textInput, h('span', { class: 'spacer' }), clearBtn, compareBtn),
    error,
    h('div', { class: 'table-wrap card' }, table, empty)));

  function saveState() {
    const p = new URLSearchParams();
    if (view.experiment) p.set('experiment', view.experiment);
    if (view.status) p.set('status', view.status);
    if (view.text) p.set('q', view.text);
    if (view.sort !== '-start') p.set('sort', view.sort);
    const s = p.toString();
    history.replaceState(null, '', s ? `#/?${s}` : '#/');
  }

  function updateSelectionUI() {
    const n = view.selected.size;
    compareBtn.textContent = n ? `Compare selected (${n})` : 'Compare selected';
    compareBtn.disabled = n < 1;
    clearBtn.hidden = n === 0;
  }

  function visibleRuns() {
    const terms = parseFilter(view.text);
    let list = view.runs.filter((r) =>
      (!view.experiment || r.experiment === view.experiment) &&
      (!view.status || r.status === view.status) &&
      terms.every((t) => termMatches(r, t)));
    const desc = view.sort.startsWith('-');
    const id = desc ? view.sort.slice(1) : view.sort;
    const col = view.columns.find((c) => c.id === id);
    if (col && col.value) {
      list = list.map((r, i) => ({ r, i, v: col.value(r) }));
      list.sort((a, b) => {
        const an = a.v === undefined || a.v === null || a.v === '', bn = b.v === undefined || b.v === null || b.v === '';
        if (an || bn) return an && bn ? a.i - b.i : an ? 1 : -1;
        const c = compareValues(a.v, b.v);
        return (desc ? -c : c) || a.i - b.i;
      });
      list = list.map((x) => x.r);
    }
    return list;
  }

  function renderHead() {
    clear(thead);
    const groups = h('tr', { class: 'group-row' });
    const names = h('tr');
    let i = 0;
    while (i < view.columns.length) {
      const g = view.columns[i].group || '';
      let span = 0;
      while (i + span < view.columns.length && (view.columns[i + span].group || '') === g) span++;
      groups.appendChild(h('th', { colSpan: span, class: g ? 'group' : '', text: g }));
      i += span;
    }
    const desc = view.sort.startsWith('-');
    const sortId = desc ? view.sort.slice(1) : view.sort;
    for (const c of view.columns) {
      const th = h('th', { class: (c.cls || '') + (c.sortable === false ? '' : ' sortable'), dataset: { col: c.id }, title: c.label });
      if (c.id === 'sel') {
        th.appendChild(h('input', { type: 'checkbox', class: 'sel-all', 'aria-label': 'Select all shown runs' }));
      } else {
        th.appendChild(h('span', { text: c.label }));
        if (c.id === sortId) {
          th.classList.add('sorted');
          th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
          th.appendChild(h('span', { class: 'sort-arrow', text: desc ? '\u25BC' : '\u25B2' }));
        }
      }
      names.appendChild(th);
    }
    thead.append(groups, names);
  }

  function createRow(r) {
    const tr = h('tr', { dataset: { id: r.id } });
    for (const c of view.columns) {
      const td = h('td', { class: c.cls || '' });
      if (c.create) c.create(td, r);
      tr.appendChild(td);
    }
    return tr;
  }

  function updateRow(tr, r, now) {
    const cells = tr.children;
    for (let i = 0; i < view.columns.length; i++) {
      const c = view.columns[i];
      const td = cells[i];
      if (c.update) c.update(td, r, now);
      else if (c.text) setText(td, c.text(r, now));
      if (c.title) { const t = c.title(r); if (td.title !== t) td.title = t; }
    }
    tr.classList.toggle('selected', view.selected.has(r.id));
  }

  function render() {
    const now = Date.now();
    const key = view.columns.map((c) => c.id).join('\u0000');
    if (key !== view.columnKey) {
      view.columnKey = key;
      view.rows.clear();
      clear(tbody);
      renderHead();
    }
    const list = visibleRuns();
    const keep = new Set();
    const frag = document.createDocumentFragment();
    const fresh = tbody.children.length === 0;
    let prev = null;
    for (const r of list) {
      keep.add(r.id);
      let tr = view.rows.get(r.id);
      if (!tr) { tr = createRow(r); view.rows.set(r.id, tr); }
      updateRow(tr, r, now);
      if (fresh) frag.appendChild(tr);
      else {
        const want = prev ? prev.nextSibling : tbody.firstChild;
        if (want !== tr) tbody.insertBefore(tr, want);
      }
      prev = tr;
    }
    if (fresh) tbody.appendChild(frag);
    if (view.rows.size > keep.size) {
      const known = new Set(view.runs.map((r) => r.id));
      for (const [id, tr] of view.rows) {
        if (!keep.has(id)) { tr.remove(); if (!known.has(id)) view.rows.delete(id); }
      }
    }
    const all = thead.querySelector('.sel-all');
    if (all) all.checked = list.length > 0 && list.every((r) => view.selected.has(r.id));
    count.textContent = list.length === view.runs.length ? `${view.runs.length} runs` : `${list.length} of ${view.runs.length} runs`;
    table.hidden = list.length === 0;
    empty.hidden = list.length !== 0;
    clear(empty);
    if (view.runs.length === 0)
      empty.append(h('p', { class: 'empty-title', text: 'No runs in this store yet.' }),
        h('p', { text: 'Train with tracking on, e.g. ' }, h('code', { text: 'krill train data.csv --label y --out model --tracking-uri PATH' })));
    else if (list.length === 0) empty.append(h('p', { class: 'empty-title', text: 'No run matches the filter.' }));
    updateSelectionUI();
    table.dataset.rows = String(list.length);
    if (view.firstRender) {
      view.firstRender = false;
      const t = performance.now();
      window.__krill = Object.assign(window.__krill || {}, { runsTableMs: t });
      document.body.dataset.runsRendered = String(list.length);
    }
  }

  function setRuns(runs) {
    view.runs = runs;
    view.columns = [...baseColumns(view), ...dynamicColumns(runs)];
    const exps = [...new Set(runs.map((r) => r.experiment))].sort();
    const have = [...expSelect.options].slice(1).map((o) => o.value);
    if (exps.join('\n') !== have.join('\n')) {
      while (expSelect.options.length > 1) expSelect.remove(1);
      for (const e of exps) expSelect.appendChild(h('option', { value: e, text: e }));
    }
    if (view.experiment && !exps.includes(view.experiment)) expSelect.appendChild(h('option', { value: view.experiment, text: view.experiment }));
    expSelect.value = view.experiment;
    render();
    ctx.setLive(runs.some((r) => r.status === 'RUNNING'));
  }

  async function refresh() {
    try {
      const runs = await api.runs();
      if (view.destroyed) return;
      error.hidden = true;
      setRuns(runs);
    } catch (e) {
      if (view.destroyed) return;
      error.hidden = false;
      error.textContent = `Could not load runs: ${e.message}`;
    }
    schedule();
  }

  function schedule() {
    if (view.destroyed) return;
    clearTimeout(view.timer);
    // poll fast while something is RUNNING, slowly otherwise (new runs appear on their own)
    const running = view.runs.some((r) => r.status === 'RUNNING');
    view.timer = setTimeout(refresh, running ? 2000 : 10000);
  }

  // ---- events ----
  expSelect.addEventListener('change', () => { view.experiment = expSelect.value; saveState(); render(); });
  statusSelect.addEventListener('change', () => { view.status = statusSelect.value; saveState(); render(); });
  let typing = null;
  textInput.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { view.text = textInput.value; saveState(); render(); }, 120);
  });
  thead.addEventListener('click', (ev) => {
    if (ev.target.classList.contains('sel-all')) {
      const on = ev.target.checked;
      for (const r of visibleRuns()) on ? view.selected.add(r.id) : view.selected.delete(r.id);
      saveSelection(view.selected);
      render();
      return;
    }
    const th = ev.target.closest('th[data-col]');
    if (!th || !th.classList.contains('sortable')) return;
    const id = th.dataset.col;
    const cur = view.sort.startsWith('-') ? view.sort.slice(1) : view.sort;
    // first click: descending for times, metrics ascending (losses), text ascending
    view.sort = cur === id ? (view.sort.startsWith('-') ? id : `-${id}`) : (id === 'start' || id === 'duration' ? `-${id}` : id);
    saveState();
    renderHead();
    render();
  });
  tbody.addEventListener('change', (ev) => {
    const box = ev.target;
    if (!box.classList.contains('sel')) return;
    box.checked ? view.selected.add(box.dataset.id) : view.selected.delete(box.dataset.id);
    saveSelection(view.selected);
    box.closest('tr').classList.toggle('selected', box.checked);
    render();
  });
  compareBtn.addEventListener('click', () => {
    const ids = view.runs.filter((r) => view.selected.has(r.id)).map((r) => r.id);
    location.hash = `#/compare?runs=${ids.join(',')}`;
  });
  clearBtn.addEventListener('click', () => { view.selected.clear(); saveSelection(view.selected); render(); });

  updateSelectionUI();
  refresh();
  return {
    destroy() { view.destroyed = true; clearTimeout(view.timer); clearTimeout(typing); },
  };
}
