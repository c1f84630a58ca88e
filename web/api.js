// The dashboard's JSON API (src/ui/api.hpp).

async function getJSON(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error || message; } catch { /* not JSON */ }
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

const q = encodeURIComponent;

export const api = {
  info: () => getJSON('/api/info'),
  experiments: () => getJSON('/api/experiments'),
  runs: () => getJSON('/api/runs'),
  run: (id) => getJSON(`/api/runs/${q(id)}`),
  // {key: {step: [...], value: [...]}}
  metrics: (id, keys) => getJSON(`/api/runs/${q(id)}/metrics` + (keys && keys.length ? `?keys=${keys.map(q).join(',')}` : '')),
};

export function artifactURL(runId, path, tail) {
  return `/api/runs/${q(runId)}/artifact?path=${q(path)}` + (tail ? `&tail=${tail}` : '');
}

export async function getText(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  return { text: await res.text(), size: Number(res.headers.get('X-Artifact-Size')) };
}
