// perfwatch's dashboard: hash routes #/ (overview), #/target/NAME?… (target page) and #/alerts?….
import { exportUrl, getJson, setToken } from './api.js';
import { el, formatTime, showError } from './dom.js';
import { rangeFromQuery, rangeParams, rangePicker, resolve, toIso } from './range.js';
import { renderFlame } from './flame.js';
import { renderLatency } from './latency.js';
import { renderCaches } from './caches.js';
import { alertsPage } from './alerts.js';
import { drawTimeline } from './markers.js';
import { tierCell, tierLegend } from './tiers.js';
import { probeStates } from './probes.js';
import './style.css';

const main = document.getElementById('main');
let current = null;  // the rendered flame graph, destroyed on navigation
let charts = [];  // the latency and cache charts, likewise

function parseHash() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

function navigate(parts, query) {
  const q = new URLSearchParams(query).toString();
  location.hash = `#/${parts.map(encodeURIComponent).join('/')}${q ? `?${q}` : ''}`;
}

async function overview(query) {
  const range = rangeFromQuery(query);
  const table = el('div', { class: 'targets' }, el('p', { class: 'muted' }, 'Loading…'));
  const probes = el('div', { id: 'probes' });
  main.replaceChildren(
    el('h1', {}, 'Targets'),
    rangePicker('Range', range, (r) => navigate([], rangeParams(r))),
    table,
    panel('probes-panel', 'Probes', probes),
  );
  try {
    const data = await getJson('/api/v1/targets', rangeParams(range));
    probes.replaceChildren(probeStates(data.hosts));
    if (!data.targets.length) {
      table.replaceChildren(el('p', { class: 'muted' }, 'No target has samples in this range yet.'));
      return;
    }
    const rows = data.targets.map((t) => el('tr', { 'data-target': t.name },
      el('td', {}, el('a', { href: `#/target/${encodeURIComponent(t.name)}?${new URLSearchParams({ host: t.host, ...rangeParams(range) })}` }, t.name)),
      el('td', {}, t.host),
      tierCell(t),
      el('td', { class: 'num' }, String(t.samples)),
      el('td', {}, t.pids.join(', ') || '–'),
      el('td', {}, formatTime(t.last_window_end))));
    table.replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ...['Target', 'Host', 'Tiers', 'Samples', 'PIDs', 'Last window'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows)), tierLegend());
  } catch (e) {
    showError(table, e);
  }
}

function panel(id, title, ...body) {
  return el('section', { class: 'panel', id }, el('h2', {}, title), ...body);
}

async function drawProfile(box, details, target, params) {
  box.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  const data = await getJson(`/api/v1/targets/${encodeURIComponent(target)}/profile`, params);
  if (!data.total) {
    box.replaceChildren(el('p', { class: 'muted empty' }, 'No samples in this range.'));
    return null;
  }
  details.textContent = `${data.total} samples, ${formatTime(data.from)} – ${formatTime(data.to)}`;
  return renderFlame(box, data.tree, { details });
}

async function drawDiff(box, details, target, params) {
  box.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  const data = await getJson(`/api/v1/targets/${encodeURIComponent(target)}/diff`, params);
  if (!data.comparison.total && !data.base.total) {
    box.replaceChildren(el('p', { class: 'muted empty' }, 'No samples in either range.'));
    return null;
  }
  details.textContent = `base ${data.base.total} samples, comparison ${data.comparison.total} samples; red grew, blue shrank (shares of each side's total)`;
  return renderFlame(box, data.tree, { details, diff: { base: data.base.total, comparison: data.comparison.total } });
}

// The base range of a diff defaults to the period of the same length just before the comparison.
function defaultBase(range) {
  const { from, to } = resolve(range);
  const length = to - from;
  return { from: toIso(new Date(from - length)), to: toIso(from) };
}

async function targetPage(target, query) {
  const host = query.get('host') || undefined;
  const view = query.get('view') === 'diff' ? 'diff' : 'flame';
  const range = rangeFromQuery(query);
  const base = query.get('base_from') ? rangeFromQuery(query, 'base_') : defaultBase(range);
  const go = (changes) => {
    const next = { host, view, ...rangeParams(range), ...(view === 'diff' ? rangeParams(base, 'base_') : {}), ...changes };
    for (const k of Object.keys(next)) if (next[k] === undefined) delete next[k];
    navigate(['target', target], next);
  };
  const withRange = (r) => ({ from: undefined, to: undefined, since: undefined, ...rangeParams(r) });

  const details = el('div', { class: 'details', id: 'flame-details' });
  const graph = el('div', { class: 'flame', id: 'flame' });
  const search = el('input', { type: 'search', placeholder: 'Search functions (highlights matches)', id: 'flame-search' });
  const reset = el('button', { type: 'button', id: 'flame-reset' }, 'Reset zoom');
  const apiParams = { host, ...rangeParams(range) };
  const exports = el('span', { class: 'exports' }, 'Export: ',
    ...[['pprof', 'pprof'], ['folded', 'folded'], ['speedscope', 'speedscope']].map(([fmt, label]) =>
      el('a', { href: exportUrl(target, fmt, apiParams), download: '' }, label)));
  const tabs = el('div', { class: 'tabs' },
    el('button', { type: 'button', class: view === 'flame' ? 'active' : '', id: 'tab-flame', onclick: () => go({ view: 'flame', base_from: undefined, base_to: undefined }) }, 'Flame graph'),
    el('button', { type: 'button', class: view === 'diff' ? 'active' : '', id: 'tab-diff', onclick: () => go({ view: 'diff', ...rangeParams(base, 'base_') }) }, 'Differential'));
  const pickers = [rangePicker(view === 'diff' ? 'Comparison' : 'Range', range, (r) => go(withRange(r)))];
  if (view === 'diff') {
    pickers.unshift(rangePicker('Base', base, (r) => {
      const b = r.since ? (({ from, to }) => ({ from: toIso(from), to: toIso(to) }))(resolve(r)) : r;
      go({ base_from: b.from, base_to: b.to });
    }));
  }
  const legend = view === 'diff'
    ? el('div', { class: 'legend' }, el('span', { class: 'swatch grow' }), 'grew', el('span', { class: 'swatch shrink' }), 'shrank', el('span', { class: 'swatch same' }), 'unchanged')
    : el('div', { class: 'legend' }, el('span', { class: 'swatch kernel' }), 'kernel', el('span', { class: 'swatch native' }), 'native', el('span', { class: 'swatch python' }), 'python');

  const latencyBox = el('div', { id: 'latency' }, el('p', { class: 'muted' }, 'Loading…'));
  const latencyPanel = panel('latency-panel', 'Latency', latencyBox);
  const cacheBox = el('div', { id: 'caches' }, el('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    el('h1', {}, el('a', { href: '#/' }, 'Targets'), ' / ', el('span', { id: 'target-name' }, target), host ? el('span', { class: 'muted' }, ` on ${host}`) : null),
    ...pickers,
    tabs,
    panel('profile-panel', view === 'diff' ? 'Differential flame graph' : 'CPU flame graph',
      el('div', { class: 'toolbar' }, search, reset, legend, exports), details, graph),
    el('div', { class: 'panel-row' }, latencyPanel, panel('cache-panel', 'Cache hit rates', cacheBox)),
    panel('alerts-panel', 'Alerts and deploys', el('p', { class: 'muted' }, 'No alerts or deploy markers in this range.')),
  );
  // Charts of a page already left are destroyed at once.
  const keep = (box) => (v) => {
    if (main.contains(box)) charts.push(v);
    else v.destroy();
  };
  // Latency on the comparison range; a stretch dragged on a chart becomes the page's range.
  const latency = renderLatency(latencyBox, target, apiParams, (from, to) => go(withRange({
    from: toIso(new Date(from * 1000)), to: toIso(new Date(to * 1000)),
  }))).then(keep(latencyBox), (e) => showError(latencyBox, e));
  const caches = renderCaches(cacheBox, target, apiParams).then(keep(cacheBox), (e) => showError(cacheBox, e));
  drawTimeline(document.getElementById('alerts-panel'), target, host, range);
  try {
    current = view === 'diff'
      ? await drawDiff(graph, details, target, { ...apiParams, ...rangeParams(base, 'base_') })
      : await drawProfile(graph, details, target, apiParams);
  } catch (e) {
    showError(graph, e);
  }
  await Promise.all([latency, caches]);
  search.addEventListener('input', () => current && current.search(search.value));
  reset.addEventListener('click', () => current && current.resetZoom());
}

async function route() {
  if (current) current.destroy();
  charts.forEach((v) => v.destroy());
  current = null;
  charts = [];
  const { parts, query } = parseHash();
  if (parts[0] === 'target' && parts[1]) await targetPage(parts[1], query);
  else if (parts[0] === 'alerts') await alertsPage(main, query, (q) => navigate(['alerts'], q));
  else await overview(query);
  document.body.dataset.ready = 'true';
}

async function showHost() {
  try {
    const info = await getJson('/api/v1/info');
    document.getElementById('host').textContent = `${info.host} · perfwatch ${info.version}`;
  } catch {
    // The page itself says what failed.
  }
}

document.getElementById('auth-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(document.getElementById('auth-token').value);
  document.getElementById('auth').hidden = true;
  showHost();
  route();
});
window.addEventListener('hashchange', () => {
  document.body.dataset.ready = 'false';
  route();
});
showHost();
route();
