// Benchmark of krill's runs dashboard on a big store: 1,000 runs x 10 metrics x 1,000 steps (10
// million metric rows, made by bench/ui_bench.py) plus one run with a 100,000-point metric.
//
//   node bench/ui_bench.mjs --krill build/krill [--store /tmp/krill-ui-bench/runs.db] [--generate]
//                           [--reps 7] [--chromium /usr/bin/chromium] [--json out.json]
//
// Times (medians over --reps, every sample in the JSON):
//   runs_list        `krill runs list --format json` on the store, wall clock of the process
//   api_runs         GET /api/runs from `krill ui` (what the runs table loads)
//   first_render     in headless Chromium: navigation start -> runs table rendered (all rows),
//                    performance.now() taken by the page itself (window.__krill.runsTableMs)
//   chart_page       navigation start -> the long run's page rendered with its 100k-point chart
//   chart_fetch      fetch + JSON.parse of the 100k points, in the page
//   chart_draw       uPlot created on the 100k points until its first draw
//   chart_redraw     one redraw after a zoom (setScale) of the 100k-point chart: under 16 ms is 60 fps
// Needs web/node_modules (playwright-core: bash scripts/setup-deps.sh --tests) and Chromium.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.resolve(here, '..');
const args = { chromium: '/usr/bin/chromium', store: path.join(os.tmpdir(), 'krill-ui-bench/runs.db'), reps: '7' };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '');
  if (k === 'generate') args.generate = true;
  else args[k] = process.argv[++i];
}
if (!args.krill) { console.error('usage: node bench/ui_bench.mjs --krill build/krill [--store PATH] [--generate] [--reps N]'); process.exit(2); }
const reps = Number(args.reps);
const krill = path.resolve(args.krill);
const { chromium } = await import(pathToFileURL(path.join(source, 'web/node_modules/playwright-core/index.mjs')).href);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const round = (x) => Math.round(x * 10) / 10;
const results = {};
function report(name, samples, extra = {}) {
  results[name] = { median_ms: round(median(samples)), min_ms: round(Math.min(...samples)), samples_ms: samples.map(round), ...extra };
  console.log(`${name.padEnd(14)} median ${round(median(samples)).toString().padStart(8)} ms   min ${round(Math.min(...samples)).toString().padStart(8)} ms` +
              (Object.keys(extra).length ? `   ${JSON.stringify(extra)}` : ''));
}

// ---- the store ----
if (args.generate || !fs.existsSync(args.store)) {
  console.log(`generating ${args.store} (1,000 runs x 10 metrics x 1,000 steps; about a minute or two)`);
  const g = spawnSync('python3', [path.join(here, 'ui_bench.py'), '--krill', krill, '--out', args.store], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (g.status !== 0) process.exit(1);
  console.log(g.stdout.trim());
}
const load = () => os.loadavg()[0].toFixed(2);
console.log(`store ${args.store} (${(fs.statSync(args.store).size / 1e9).toFixed(2)} GB), ${os.cpus().length} CPUs, load ${load()}`);

// ---- krill runs list --format json ----
{
  const samples = [];
  let bytes = 0, runs = 0;
  for (let i = 0; i < reps + 1; i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(krill, ['runs', 'list', '--format', 'json', '--tracking-uri', args.store], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) { console.error(`krill runs list failed: ${r.stderr}`); break; }
    if (i > 0) samples.push(ms);   // the first one warms the page cache
    bytes = r.stdout.length;
    runs = JSON.parse(r.stdout).length;
  }
  if (samples.length) report('runs_list', samples, { runs, bytes });
}

// ---- krill ui ----
const port = await new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
const ui = spawn(krill, ['ui', '--port', String(port), '--tracking-uri', args.store], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => ui.kill('SIGKILL'));
await new Promise((resolve, reject) => {
  let out = '';
  ui.stdout.on('data', (d) => { out += d; if (out.includes('Dashboard:')) resolve(); });
  ui.on('exit', (c) => reject(new Error(`krill ui exited ${c}`)));
});
const base = `http://127.0.0.1:${port}/`;
let runs;
{
  const samples = [];
  let bytes = 0;
  for (let i = 0; i < reps + 1; i++) {
    const t = performance.now();
    const res = await fetch(`${base}api/runs`);
    const text = await res.text();
    if (i > 0) samples.push(performance.now() - t);
    bytes = text.length;
    runs = JSON.parse(text);
  }
  report('api_runs', samples, { runs: runs.length, bytes });
}
const longRun = runs.find((r) => r.name === 'long-run');

// ---- Chromium ----
const userData = fs.mkdtempSync(path.join(os.tmpdir(), 'krill-ui-bench-chromium-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: args.chromium, headless: true, viewport: { width: 1600, height: 1000 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
         '--disable-component-update', '--disable-sync'],
});
try {
  const first = [], chartPage = [];
  let rows = 0;
  for (let i = 0; i < reps + 1; i++) {
    const page = await context.newPage();
    await page.goto(base);
    await page.waitForSelector('body[data-runs-rendered]', { timeout: 60000 });
    const t = await page.evaluate(() => window.__krill.runsTableMs);
    rows = Number(await page.$eval('#runs-table', (el) => el.dataset.rows));
    if (i > 0) first.push(t);
    await page.close();
  }
  report('first_render', first, { rows });

  for (let i = 0; i < reps + 1; i++) {
    const page = await context.newPage();
    await page.goto(`${base}#/run/${longRun.id}`);
    await page.waitForSelector('.metric-chart[data-metric="train_loss"][data-points="100000"] canvas', { timeout: 60000 });
    // the chart draws in a microtask after its creation: wait a frame, then read the clock
    const t = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(performance.now()))));
    if (i > 0) chartPage.push(t);
    if (i === reps && args.screenshot) await page.screenshot({ path: args.screenshot });
    await page.close();
  }
  report('chart_page', chartPage, { points: 100000 });

  const page = await context.newPage();
  await page.goto(base);
  await page.waitForSelector('body[data-runs-rendered]', { timeout: 60000 });
  const chart = await page.evaluate(async ({ id, reps }) => {
    const fetches = [], draws = [], redraws = [];
    for (let rep = 0; rep < reps; rep++) {
      const t0 = performance.now();
      const cols = (await (await fetch(`/api/runs/${id}/metrics?keys=train_loss`)).json()).train_loss;
      const t1 = performance.now();
      const el = document.createElement('div');
      document.body.appendChild(el);
      let drawn = null;
      const u = new uPlot({ width: 1400, height: 400, scales: { x: { time: false } }, legend: { live: true },
                            series: [{}, { stroke: '#2563eb', width: 1.5, points: { show: false } }],
                            hooks: { draw: [() => drawn && drawn()] } },
                          [cols.step, cols.value], el);
      await new Promise((r) => { drawn = r; });   // the first draw (a microtask after creation)
      const t2 = performance.now();
      fetches.push(t1 - t0);
      draws.push(t2 - t1);
      for (let i = 0; i < 20; i++) {   // zoom in and out: each setScale is one full redraw
        const a = performance.now();
        const p = new Promise((r) => { drawn = r; });
        u.setScale('x', i % 2 ? { min: 1, max: 100000 } : { min: 1000 * i, max: 100000 - 2000 * i });
        await p;
        redraws.push(performance.now() - a);
      }
      u.destroy();
      el.remove();
    }
    return { fetches, draws, redraws };
  }, { id: longRun.id, reps });
  report('chart_fetch', chart.fetches, { points: 100000 });
  report('chart_draw', chart.draws);
  report('chart_redraw', chart.redraws);
} finally {
  await context.close();
  fs.rmSync(userData, { recursive: true, force: true });
  ui.kill('SIGTERM');
}
results.machine = { cpus: os.cpus().length, cpu: os.cpus()[0].model, load_after: load(), chromium: args.chromium };
if (args.json) fs.writeFileSync(args.json, JSON.stringify(results, null, 2));
