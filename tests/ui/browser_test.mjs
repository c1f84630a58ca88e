// The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core (web/node_modules; it downloads no browser).
//
//   node tests/ui/browser_test.mjs --krill build/krill --fake-run build/tests/ui_fake_run \
//        --source . --work /tmp/ui_browser [--chromium /usr/bin/chromium] [--screenshot out.png]
//
// 1. A store with a real `krill train` run (penguins, 20 epochs), a real run named
//    <script>alert(1)</script> whose model directory is named <img src=x onerror=alert(2)>, and a
//    live run (ui_fake_run) logging a point every 100 ms, with per-rank logs.
// 2. `krill ui --port <free> --tracking-uri ...`; the runs table must list the three runs, the
//    script-named run as text, no dialog may open, no page error may happen.
// 3. Sort and filter the table; follow the penguin run's link: a chart per metric with the run's
//    20 points drawn, the loss plot loaded; screenshot.
// 4. The live run's page: the chart gains points without a reload, a per-rank log is shown.
// 5. Compare two runs: one chart, two series. Then SIGTERM stops the server cleanly.
// Anything missing (Chromium, playwright-core, the binaries) fails the test; nothing is skipped.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = { chromium: '/usr/bin/chromium', source: path.resolve(here, '../..') };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase())] = process.argv[i + 1];

let failures = 0;
const log = (...a) => console.log('[ui_browser]', ...a);
function check(cond, what) {
  if (cond) log('ok  ', what);
  else { failures++; console.error('[ui_browser] FAIL', what); }
}
function fatal(msg) {
  console.error('[ui_browser] FAIL', msg);
  process.exit(1);
}

for (const [flag, p] of [['--krill', args.krill], ['--fake-run', args.fakeRun], ['--chromium', args.chromium]])
  if (!p || !fs.existsSync(p)) fatal(`${flag} ${p ?? '(not given)'} does not exist` + (flag === '--chromium' ? ': apt-get install chromium (or bash scripts/setup-deps.sh --tests)' : ''));
let chromium;
try {
  ({ chromium } = await import(pathToFileURL(path.resolve(args.source, 'web/node_modules/playwright-core/index.mjs')).href));
} catch (e) {
  fatal(`playwright-core is not installed in web/node_modules (${e.message}): run bash scripts/setup-deps.sh --tests (or npm ci --prefix web)`);
}

const work = path.resolve(args.work || fs.mkdtempSync(path.join(os.tmpdir(), 'krill-ui-')));
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
const db = path.join(work, 'runs.db');
const data = path.resolve(args.source, 'data/penguins.csv');

// ---- 1. the store ----
function krill(...argv) {
  const r = spawnSync(args.krill, argv, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  if (r.status !== 0) fatal(`krill ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
const common = [data, '--label', 'Species', '--categorical', 'Island', '--tracking-uri', db, '-q'];
krill('train', ...common, '--epochs', '20', '--out', path.join(work, 'model'), '--experiment', 'penguins', '--run-name', 'penguins-mlp');
const XSS_NAME = '<script>alert(1)</script>';
const XSS_DIR = '<img src=x onerror=alert(2)>';
krill('train', ...common, '--epochs', '5', '--out', path.join(work, XSS_DIR), '--experiment', 'penguins', '--run-name', XSS_NAME);

const children = [];
process.on('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

function startLine(child, pattern, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no "${pattern}" within ${timeoutMs} ms; output: ${out}`)), timeoutMs);
    const onData = (d) => {
      out += d;
      const m = pattern.exec(out);
      if (m) { clearTimeout(timer); resolve(m); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code}: ${out}`)); });
  });
}

const live = spawn(args.fakeRun, [db, path.join(work, 'live-model'), '150', '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
children.push(live);
const liveId = (await startLine(live, /RUN ([0-9a-f]{32})/, 'ui_fake_run'))[1];

// ---- 2. krill ui ----
const port = await new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const ui = spawn(args.krill, ['ui', '--port', String(port), '--tracking-uri', db], { stdio: ['ignore', 'pipe', 'pipe'] });
children.push(ui);
let uiOut = '';
ui.stdout.on('data', (d) => { uiOut += d; });
const banner = await startLine(ui, /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/) \(store: ([^)]+)\)/, 'krill ui');
check(banner[1] === `http://127.0.0.1:${port}/` && banner[2] === db, `banner: ${banner[0]}`);
const base = banner[1];

// the same port again: a clear error
const second = spawnSync(args.krill, ['ui', '--port', String(port), '--tracking-uri', db], { encoding: 'utf8', timeout: 10000 });
check(second.status !== 0 && second.stderr.includes(`port ${port} is in use: pass --port N`), `second krill ui on the port: ${second.stderr.trim()}`);

const userData = fs.mkdtempSync(path.join(os.tmpdir(), 'krill-ui-chromium-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: args.chromium,
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
         '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || (await context.newPage());
const dialogs = [], pageErrors = [], consoleErrors = [];
page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

try {
  // ---- the runs table ----
  await page.goto(base);
  await page.waitForSelector('body[data-runs-rendered]', { timeout: 15000 });
  const names = await page.$$eval('#runs-table tbody a.run-link', (as) => as.map((a) => a.textContent));
  check(names.length === 3 && names.includes('penguins-mlp') && names.includes('live-run'), `runs table lists the 3 runs: ${JSON.stringify(names)}`);
  check(names.includes(XSS_NAME), 'the run named <script>alert(1)</script> is shown as text');
  const scripts = await page.evaluate(() => document.scripts.length);
  check(scripts === 2, `no script element added by data (document.scripts: ${scripts})`);
  const imgs = await page.$$eval('#runs-table img', (x) => x.length);
  check(imgs === 0, 'the <img onerror> model directory (param "out") is text, not an image');
  const outCells = await page.$$eval('#runs-table td.param', (tds) => tds.map((t) => t.textContent));
  check(outCells.some((t) => t.endsWith(XSS_DIR)), 'the param holding markup is shown verbatim');
  const status = await page.$eval(`#runs-table tr[data-id="${liveId}"] .badge`, (b) => b.textContent);
  check(status === 'RUNNING', `the live run's badge: ${status}`);

  // sort by val_loss ascending (click its header), then filter
  await page.click('#runs-table th[data-col="m:val_loss"]');
  const sorted = await page.$$eval('#runs-table tbody tr', (trs) => trs.map((tr) => tr.querySelector('a.run-link').textContent));
  const vl = JSON.parse(await (await fetch(`${base}api/runs`)).text())
    .filter((r) => r.metrics.val_loss).sort((a, b) => a.metrics.val_loss.value - b.metrics.val_loss.value).map((r) => r.name);
  check(JSON.stringify(sorted.slice(0, 2)) === JSON.stringify(vl) && sorted[2] === 'live-run', `sorted by val_loss: ${JSON.stringify(sorted)}`);
  await page.fill('input.filter', 'epochs=5');
  await page.waitForFunction(() => document.querySelector('#runs-table').dataset.rows === '1');
  check(true, 'filter epochs=5 leaves one run');
  await page.fill('input.filter', '');
  await page.waitForFunction(() => document.querySelector('#runs-table').dataset.rows === '3');

  // ---- follow the penguin run's link ----
  const runs = await (await fetch(`${base}api/runs`)).json();
  const penguin = runs.find((r) => r.name === 'penguins-mlp');
  const metrics = await (await fetch(`${base}api/runs/${penguin.id}/metrics`)).json();
  await page.click('#runs-table a.run-link >> text=penguins-mlp');
  await page.waitForSelector(`body[data-run-rendered="${penguin.id}"]`, { timeout: 15000 });
  check(page.url().endsWith(`#/run/${penguin.id}`), `followed the run link to ${page.url()}`);
  const keys = Object.keys(metrics).sort();
  check(keys.includes('train_loss') && keys.includes('val_loss'), `the run logged train_loss and val_loss: ${keys}`);
  for (const key of keys) {
    const sel = `.metric-chart[data-metric="${key}"]`;
    await page.waitForSelector(`${sel} canvas`, { timeout: 10000 });
    const points = await page.$eval(sel, (el) => Number(el.dataset.points));
    check(points === metrics[key].step.length && (key.endsWith('loss') ? points === 20 : true), `chart ${key}: ${points} points`);
  }
  // the line is drawn: the canvas holds pixels of the series colour (#2563eb)
  const drawn = await page.$eval('.metric-chart[data-metric="val_loss"] canvas', (c) => {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && Math.abs(px[i] - 0x25) < 40 && Math.abs(px[i + 1] - 0x63) < 40 && px[i + 2] > 0xc0) n++;
    return n;
  });
  check(drawn > 50, `val_loss line drawn (${drawn} line pixels)`);
  await page.waitForFunction(() => { const i = document.getElementById('loss-png'); return i && i.complete && i.naturalWidth > 0; }, null, { timeout: 10000 });
  check(true, 'loss.png artifact shown as an image');
  const shot = path.join(work, 'run-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  check(fs.statSync(shot).size > 10000, `screenshot ${shot}`);
  if (args.screenshot) fs.copyFileSync(shot, args.screenshot);

  // the script-named run's page: name, params and artifacts as text
  await page.goto(`${base}#/run/${runs.find((r) => r.name === XSS_NAME).id}`);
  await page.waitForSelector('body[data-run-rendered]');
  await page.waitForFunction((n) => document.querySelector('h1.run-name')?.textContent === n, XSS_NAME);
  check((await page.$$eval('main img:not(#loss-png)', (x) => x.length)) === 0, 'run page: no image made from data');

  // ---- the live run ----
  await page.goto(`${base}#/run/${liveId}`);
  await page.waitForSelector('.metric-chart[data-metric="loss"] canvas', { timeout: 10000 });
  const before = await page.$eval('.metric-chart[data-metric="loss"]', (el) => Number(el.dataset.points));
  await page.waitForFunction((b) => Number(document.querySelector('.metric-chart[data-metric="loss"]').dataset.points) >= b + 10,
    before, { timeout: 15000 });
  const after = await page.$eval('.metric-chart[data-metric="loss"]', (el) => Number(el.dataset.points));
  check(after >= before + 10, `live chart grew from ${before} to ${after} points without a reload`);
  const tag = await page.$eval('table.kv', () => [...document.querySelectorAll('table.kv td')].map((t) => t.textContent));
  check(tag.includes('<b>not bold</b>') && tag.includes('<img src=x onerror=alert(2)>'), 'live run: tag and param with markup shown as text');
  await page.waitForFunction(() => /rank 0: step \d+/.test(document.getElementById('log')?.textContent || ''), null, { timeout: 10000 });
  const tabs = await page.$$eval('.logs .tab', (t) => t.map((x) => x.textContent));
  check(JSON.stringify(tabs) === '["rank-0.log","rank-1.log"]', `per-rank logs: ${JSON.stringify(tabs)}`);
  await page.screenshot({ path: path.join(work, 'live-run.png'), fullPage: true });

  // ---- compare ----
  await page.goto(base);
  await page.waitForSelector('body[data-runs-rendered]');
  for (const r of runs.filter((r) => r.experiment === 'penguins'))
    await page.check(`#runs-table input.sel[data-id="${r.id}"]`);
  await page.click('button.btn-primary');
  await page.waitForSelector('.metric-chart canvas', { timeout: 10000 });
  const legend = await page.$$eval('.uplot .u-legend .u-series .u-label', (ls) => ls.map((l) => l.textContent));
  check(legend.includes('penguins-mlp') && legend.includes(XSS_NAME), `compare legend: ${JSON.stringify(legend)}`);
  const cmpPoints = await page.$eval('.metric-chart', (el) => Number(el.dataset.points));
  check(cmpPoints === 20, `compare chart over ${cmpPoints} steps`);
  await page.screenshot({ path: path.join(work, 'compare.png'), fullPage: true });

  check(dialogs.length === 0, `no dialog opened (${JSON.stringify(dialogs)})`);
  check(pageErrors.length === 0, `no page errors (${JSON.stringify(pageErrors)})`);
  check(consoleErrors.length === 0, `no console errors (${JSON.stringify(consoleErrors)})`);
} catch (e) {
  failures++;
  console.error('[ui_browser] FAIL', e.stack || e.message);
  try { await page.screenshot({ path: path.join(work, 'failure.png'), fullPage: true }); } catch { /* */ }
} finally {
  await context.close();
  fs.rmSync(userData, { recursive: true, force: true });
}

// ---- SIGTERM stops the server cleanly ----
const exited = new Promise((resolve) => ui.on('exit', (code, signal) => resolve({ code, signal })));
ui.kill('SIGTERM');
const { code } = await exited;
check(code === 0 && uiOut.includes('stopped'), `krill ui stopped on SIGTERM (exit ${code})`);
live.kill('SIGKILL');

if (failures) {
  console.error(`[ui_browser] ${failures} check(s) failed; screenshots and the store in ${work}`);
  process.exit(1);
}
log(`all checks passed; screenshots in ${work}`);
