// The target page's latency panel: a table of each operation's percentiles merged over the range with
// its verdict, and one uPlot chart per operation (p50/p95/p99 per window or rollup bucket, and the
// threshold as a dashed line) over the page's time range. The charts share a cursor; dragging across
// one selects that stretch as the page's new range.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { getJson } from './api.js';
import { el } from './dom.js';
import { chartWidth, resizingView } from './plots.js';

export const colours = { p50: '#2563eb', p95: '#d97706', p99: '#7c3aed', threshold: '#dc2626' };
const chartHeight = 220;

// "850 µs", "12.3 ms", "1.52 s": three significant digits, as the CLI prints them.
export function formatNs(ns) {
  if (ns === null || ns === undefined) return '–';
  if (ns === 0) return '0';
  if (ns < 1e6) return `${+(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${+(ns / 1e6).toPrecision(3)} ms`;
  return `${+(ns / 1e9).toPrecision(3)} s`;
}

export function thresholdText(op) {
  return `${op.tier || 'own'} ${formatNs(op.threshold_ns)}`;
}

function verdictCell(op) {
  if (op.verdict === 'no_data' && op.not_measured) {
    return el('td', { class: 'verdict verdict-not_measured', title: op.not_measured }, 'not measured');
  }
  if (op.verdict === 'no_data') {
    const last = op.last_window_end ? `last call before ${new Date(op.last_window_end).toLocaleString()}` : '';
    return el('td', { class: 'verdict verdict-no_data', title: last }, 'no calls');
  }
  const title = `p99 ${formatNs(op.p99_ns)} is ${op.verdict === 'ok' ? 'within' : 'over'} the threshold (${thresholdText(op)}); it is in ${op.grade}`;
  return el('td', { class: `verdict verdict-${op.verdict}`, title }, `${op.verdict} (${op.grade})`);
}

function summaryTable(ops) {
  const head = ['Operation', 'Threshold', 'Calls', 'p50', 'p95', 'p99', 'Max', 'Slow', 'Verdict'];
  const rows = ops.map((op) => el('tr', { 'data-operation': op.name },
    el('td', { title: `${op.source}: ${op.spec}` }, op.name),
    el('td', {}, thresholdText(op)),
    el('td', { class: 'num' }, String(op.calls)),
    ...['p50_ns', 'p95_ns', 'p99_ns', 'max_ns'].map((k) => el('td', { class: 'num' }, op.calls ? formatNs(op[k]) : '–')),
    el('td', { class: 'num' }, op.calls ? `${(100 * op.slow_fraction).toFixed(1)}%` : '–'),
    verdictCell(op)));
  return el('div', { class: 'table-scroll' }, el('table', { class: 'latency-table' },
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows)));
}

// Probe losses and bad StatsD input in the range (every target's): worth a note when there are any.
function healthNote(h) {
  const lost = h.lost_no_entry + h.lost_unwound + h.lost_map_full;
  const bad = h.statsd_malformed + h.statsd_oversized;
  if (!lost && !bad) return null;
  return el('p', { class: 'muted health-note' },
    `In this range (all targets): ${lost} probe calls lost, ${h.statsd_malformed} malformed StatsD lines, ${h.statsd_oversized} oversized datagrams.`);
}

// uPlot's columns, in milliseconds. The range's ends carry only the threshold, so that its line spans
// the chart; a null breaks the percentile lines where windows are missing (a gap over twice the usual step).
export function chartData(series, from, to) {
  const n = series.start.length;
  const steps = [];
  for (let i = 1; i < n; i++) steps.push(series.start[i] - series.start[i - 1]);
  steps.sort((a, b) => a - b);
  const usual = steps.length ? steps[Math.floor(steps.length / 2)] : Infinity;
  const ms = (ns) => ns / 1e6;
  const columns = [[], [], [], [], []];
  const push = (...values) => values.forEach((v, i) => columns[i].push(v));
  if (series.start[0] > from) push(from, null, null, null, ms(series.threshold_ns[0]));
  for (let i = 0; i < n; i++) {
    if (i > 0 && series.start[i] - series.start[i - 1] > 2 * usual) {
      push((series.start[i - 1] + series.start[i]) / 2, null, null, null, ms(series.threshold_ns[i - 1]));
    }
    push(series.start[i], ms(series.p50_ns[i]), ms(series.p95_ns[i]), ms(series.p99_ns[i]), ms(series.threshold_ns[i]));
  }
  if (series.start[n - 1] < to) push(to, null, null, null, ms(series.threshold_ns[n - 1]));
  return columns;
}

function chart(holder, op, data, from, to, onSelect) {
  const value = (u, v) => (v === null || v === undefined ? '–' : formatNs(v * 1e6));
  // Dots while they have room; lines alone when the points are dense.
  const points = (size, fill) => ({ size, fill, show: (u) => u.data[0].length * 8 * devicePixelRatio <= u.bbox.width });
  const opts = {
    width: chartWidth(holder),
    height: chartHeight,
    scales: {
      x: { time: true, range: () => [from, to] },
      y: { range: (u, min, max) => [0, Math.max(max, 0.001) * 1.15] },
    },
    series: [
      {},
      { label: 'p50', stroke: colours.p50, width: 1.5, value, points: points(5, colours.p50) },
      { label: 'p95', stroke: colours.p95, width: 1.5, value, points: points(5, colours.p95) },
      { label: 'p99', stroke: colours.p99, width: 2, value, points: points(6, colours.p99) },
      { label: `threshold (${thresholdText(op)})`, stroke: colours.threshold, width: 2, dash: [8, 4], value,
        points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) },
    ],
    axes: [{}, { size: 64, values: (u, ticks) => ticks.map((t) => formatNs(t * 1e6)) }],
    // A drag selects (the page then moves to that range) rather than zooming this chart alone.
    cursor: { sync: { key: 'perfwatch-latency' }, drag: { x: true, y: false, setScale: false } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 4) return;
        onSelect(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x'));
      }],
    },
  };
  return new uPlot(opts, data, holder);
}

// Renders the latency of `target` over `params` (the API's range parameters) into `box`. onSelect(from,
// to) gets a range dragged on a chart, in Unix seconds. Returns {destroy()}.
export async function renderLatency(box, target, params, onSelect) {
  const data = await getJson(`/api/v1/targets/${encodeURIComponent(target)}/latency`, params);
  if (!data.operations.length) {
    box.replaceChildren(el('p', { class: 'muted empty' }, 'No latency operations recorded for this target.'));
    return { destroy() {} };
  }
  const from = Date.parse(data.from) / 1000;
  const to = Date.parse(data.to) / 1000;
  const blocks = data.operations.map((op) => {
    const holder = el('div', { class: 'latency-plot' });
    return {
      op,
      holder,
      block: el('div', { class: 'latency-chart', 'data-operation': op.name },
        el('h3', {}, op.name, el('span', { class: 'muted' }, ` ${op.source}, ${thresholdText(op)}`)),
        op.calls ? holder : el('p', { class: 'muted' }, 'No calls in this range.')),
    };
  });
  const step = data.step === 'window' ? 'a point per window' : `a point per ${data.step}`;
  box.replaceChildren(...[
    summaryTable(data.operations),
    healthNote(data.health),
    el('p', { class: 'details' }, `Percentiles merged over the range; charts show ${step}. Drag across a chart to zoom into that stretch.`),
    ...blocks.map((b) => b.block)].filter(Boolean));
  const charts = blocks.filter((b) => b.op.calls)
    .map((b) => chart(b.holder, b.op, chartData(b.op.series, from, to), from, to, onSelect));
  return resizingView(box, charts, chartHeight);
}
