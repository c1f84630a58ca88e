// krill ui: the runs dashboard. Hash routes:
//   #/                      the runs table (?experiment=&status=&q=&sort=)
//   #/run/ID                one run
//   #/compare?runs=A,B&metric=K
import { api } from './api.js';
import { setText } from './dom.js';
import { runsView } from './runs.js';
import { runView } from './run.js';
import { compareView } from './compare.js';

const root = document.getElementById('view');
const live = document.getElementById('live');
let current = null;

const ctx = {
  setLive(on) { live.hidden = !on; },
};

function route() {
  if (current) current.destroy();
  current = null;
  ctx.setLive(false);
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search] = hash.split('?');
  const query = new URLSearchParams(search || '');
  for (const a of document.querySelectorAll('.topbar nav a')) a.classList.remove('active');
  window.scrollTo(0, 0);
  let m;
  if ((m = /^\/run\/([^/]+)$/.exec(path))) {
    document.getElementById('nav-runs').classList.add('active');
    current = runView(root, decodeURIComponent(m[1]), ctx);
  } else if (path === '/compare') {
    document.getElementById('nav-compare').classList.add('active');
    document.title = 'Compare \u00B7 krill runs';
    current = compareView(root, query, ctx);
  } else {
    document.getElementById('nav-runs').classList.add('active');
    document.title = 'krill runs';
    current = runsView(root, query, ctx);
  }
}

window.addEventListener('hashchange', route);
route();
api.info().then((info) => {
  const el = document.getElementById('store');
  setText(el, info.store);
  el.title = `Run store (krill ${info.krill_version})`;
}).catch(() => {});
