// The target page's cache panel: each cache's lookups, hits and hit ratio over the range (page cache,
// LLC, application caches), one uPlot chart of every cache's hit ratio per window on the page's time
// range, and what measured the page cache and the LLC (or why nothing could).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { getJson } from './api.js';
import { el } from './dom.js';
import { chartWidth, resizingView } from './plots.js';

const palette = ['#2563eb', '#16a34a', '#d97706', '#7c3aed', '#db2777', '#0891b2'];
const chartHeight = 200;

function percent(ratio) {
  return ratio === null || ratio === undefined ? '–' : `${(100 * ratio).toFixed(1)}%`;
}

function summaryTable(caches) {
  const head = ['Cache', 'Kind', 'Lookups', 'Hits', 'Misses', 'Hit ratio', 'Counted by'];
  const rows = caches.map((c) => el('tr', { 'data-cache': c.name },
    el('td', {}, c.name),
    el('td', {}, c.kind),
    ...[c.lookups, c.hits, c.misses].map((n) => el('td', { class: 'num' }, String(n))),
    el('td', { class: 'num hit-ratio' }, percent(c.hit_ratio)),
    el('td', { class: 'muted' }, c.spec || '–')));
  return el('div', { class: 'table-scroll' }, el('table', { class: 'cache-table' },
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows)));
}

// uPlot's columns: the union of the caches' window starts (Unix seconds), each cache's ratio in
// percent at its own windows and null elsewhere.
function chartData(caches) {
  const starts = [...new Set(caches.flatMap((c) => c.series.map((p) => Date.parse(p.start) / 1000)))].sort((a, b) => a - b);
  const index = new Map(starts.map((t, i) => [t, i]));
  const columns = [starts];
  for (const c of caches) {
    const column = new Array(starts.length).fill(null);
    for (const p of c.series) {
      if (p.hit_ratio !== null) column[index.get(Date.parse(p.start) / 1000)] = 100 * p.hit_ratio;
    }
    columns.push(column);
  }
  return columns;
}

function chart(holder, caches, from, to) {
  const value = (u, v) => (v === null || v === undefined ? '–' : `${v.toFixed(1)}%`);
  return new uPlot({
    width: chartWidth(holder),
    height: chartHeight,
    scales: { x: { time: true, range: () => [from, to] }, y: { range: () => [0, 100] } },
    series: [{}, ...caches.map((c, i) => ({
      label: c.name, stroke: palette[i % palette.length], width: 1.5, value, spanGaps: false,
      points: { size: 5, show: (u) => u.data[0].length * 8 * devicePixelRatio <= u.bbox.width },
    }))],
    axes: [{}, { size: 50, values: (u, ticks) => ticks.map((t) => `${t}%`) }],
    cursor: { drag: { x: false, y: false } },
  }, chartData(caches), holder);
}

// Renders the caches of `target` over `params` (the API's range parameters) into `box`. Returns {destroy()}.
export async function renderCaches(box, target, params) {
  const data = await getJson(`/api/v1/targets/${encodeURIComponent(target)}/caches`, params);
  const sources = el('p', { class: 'muted cache-sources' },
    `Page cache: ${data.page_cache.state || 'no window in range'}. LLC: ${data.llc.state || 'no window in range'}.`);
  if (!data.caches.length) {
    box.replaceChildren(el('p', { class: 'muted empty' }, 'No cache lookups of this target in this range.'), sources);
    return { destroy() {} };
  }
  const holder = el('div', { class: 'cache-plot' });
  box.replaceChildren(summaryTable(data.caches), holder, sources);
  return resizingView(box, [chart(holder, data.caches, Date.parse(data.from) / 1000, Date.parse(data.to) / 1000)], chartHeight);
}
