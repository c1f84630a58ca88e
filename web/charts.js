// Metric charts on uPlot (web/node_modules/uplot, loaded as the global uPlot). A chart keeps the
// user's zoom when live data arrives: update() redraws with the new points but leaves a zoomed
// x range alone (double-click resets the zoom, as everywhere in uPlot).
import { h } from './dom.js';
import { fmtNumber } from './format.js';

export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
                        '#475569', '#ea580c'];

// Columns from the API ({step: [...], value: [...]}) -> uPlot's data. The arrays are used as they
// come (no copy); JSON null is a gap.
export function seriesData(columns) {
  return [columns.step, columns.value];
}

const axisStyle = {
  stroke: '#64748b',
  grid: { stroke: '#e2e8f0', width: 1 },
  ticks: { stroke: '#cbd5e1', width: 1 },
  font: '11px system-ui, sans-serif',
};

// Short tick labels: 5.07M, 0.25, 1.2e-4.
export function fmtTick(v) {
  if (v == null) return '';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

// The y axis as wide as its longest label (uPlot calls this until the size settles).
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;
  let size = axis.ticks.size + axis.gap;
  const longest = (values || []).reduce((acc, v) => (v.length > acc.length ? v : acc), '');
  if (longest) {
    u.ctx.font = axis.font[0];
    size += u.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size) + 4;
}

// container: the element the chart fills; series: [{label, color}]; data: [x, y1, y2, ...]
export function createChart(container, { series, data, height = 240, xLabel = 'step' }) {
  let width = Math.max(240, container.clientWidth || 480);
  let updating = false;
  let zoom = null;   // the user's x range, while zoomed in
  const opts = {
    width,
    height,
    pxAlign: false,
    cursor: { drag: { x: true, y: false }, points: { size: 6 } },
    scales: { x: { time: false } },
    legend: { live: true },
    axes: [
      { ...axisStyle, label: xLabel, labelSize: 20, labelFont: '11px system-ui, sans-serif' },
      { ...axisStyle, size: axisSize, values: (u, vals) => vals.map(fmtTick) },
    ],
    series: [
      { label: xLabel, value: (u, v) => (v == null ? '--' : String(v)) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: { show: false },
        value: (u, v) => (v == null ? '--' : fmtNumber(v)),
      })),
    ],
    hooks: {
      setScale: [(u, key) => {
        if (key !== 'x' || updating) return;
        const xs = u.data[0];
        if (!xs || xs.length === 0) { zoom = null; return; }
        const { min, max } = u.scales.x;
        zoom = (min > xs[0] || max < xs[xs.length - 1]) ? { min, max } : null;
      }],
    },
  };
  const plot = new uPlot(opts, data, container);
  const points = () => (data[0] ? data[0].length : 0);
  container.dataset.points = String(points());

  const resize = new ResizeObserver(() => {
    const w = Math.max(240, container.clientWidth);
    if (Math.abs(w - width) > 2) {
      width = w;
      plot.setSize({ width, height });
    }
  });
  resize.observe(container);

  return {
    plot,
    update(newData) {
      data = newData;
      updating = true;
      try {
        if (zoom) {
          plot.setData(newData, false);
          plot.setScale('x', zoom);
        } else {
          plot.setData(newData, true);
        }
      } finally {
        updating = false;
      }
      container.dataset.points = String(points());
    },
    destroy() {
      resize.disconnect();
      plot.destroy();
    },
  };
}

// A card holding one chart: title, latest value, point count.
export function chartCard(title, subtitle) {
  const body = h('div', { class: 'chart-body' });
  const meta = h('span', { class: 'chart-meta', text: subtitle || '' });
  const card = h('section', { class: 'card chart-card' },
    h('header', { class: 'chart-head' }, h('h3', { class: 'chart-title', text: title }), meta),
    body);
  return { card, body, meta };
}
