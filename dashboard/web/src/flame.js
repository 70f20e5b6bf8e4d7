// Flame graphs through d3-flame-graph: kind colours (kernel, native, python), tooltips with counts and
// shares, click to zoom, search; the differential variant colours growth red and shrink blue.
import { select } from 'd3-selection';
import { flamegraph } from 'd3-flame-graph';
import 'd3-flame-graph/dist/d3-flamegraph.css';

// Hues per frame kind; the name varies lightness so neighbours stay apart.
const kindHue = { kernel: 28, native: 4, python: 200, root: 0 };

function hash(name) {
  let h = 0;
  for (let i = 0; i < Math.min(name.length, 24); i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return (h % 1000) / 1000;
}

export function kindColor(kind, name) {
  if (kind === 'root') return 'hsl(0, 0%, 78%)';
  const v = hash(name || '');
  return `hsl(${kindHue[kind] ?? 50 + 10 * v}, ${60 + 25 * v}%, ${58 + 14 * v}%)`;
}

export function diffColor(node) {
  const { value, delta = 0 } = node.data;
  const base = Math.max(value, value - delta, 1);
  const strength = Math.min(Math.abs(delta) / base, 1);
  const fade = Math.round(235 - 200 * strength);
  if (Math.abs(delta) < 0.5) return 'rgb(220, 220, 220)';
  return delta > 0 ? `rgb(240, ${fade}, ${fade})` : `rgb(${fade}, ${fade}, 240)`;
}

function percent(x) {
  return `${(100 * x).toFixed(2)}%`;
}

// A tooltip as d3-flame-graph expects: a function (called once with the svg) with show/hide, placed
// at the pointer.
function makeTooltip(describe) {
  const tip = document.createElement('div');
  tip.className = 'flame-tip';
  tip.hidden = true;
  document.body.append(tip);
  let x = 0;
  let y = 0;
  const move = (e) => {
    x = e.pageX;
    y = e.pageY;
    if (!tip.hidden) place();
  };
  const place = () => {
    tip.style.left = `${Math.min(x + 12, window.scrollX + window.innerWidth - tip.offsetWidth - 8)}px`;
    tip.style.top = `${y + 14}px`;
  };
  document.addEventListener('mousemove', move);
  const tooltip = () => {};
  tooltip.show = (d) => {
    tip.replaceChildren(...describe(d));
    tip.hidden = false;
    place();
  };
  tooltip.hide = () => {
    tip.hidden = true;
  };
  tooltip.destroy = () => {
    document.removeEventListener('mousemove', move);
    tip.remove();
  };
  return tooltip;
}

function line(label, text) {
  const div = document.createElement('div');
  const b = document.createElement('b');
  b.textContent = label;
  div.append(b, document.createTextNode(` ${text}`));
  return div;
}

function describeFrame(d, total) {
  const parentValue = d.parent ? d.parent.data.value : d.data.value;
  return [
    line(d.data.name, ''),
    line('kind', d.data.kind),
    line('module', d.data.module || '-'),
    line('samples', `${d.data.value} (${percent(d.data.value / Math.max(total, 1))} of all, ${percent(d.data.value / Math.max(parentValue, 1))} of caller)`),
  ];
}

function describeDiff(d, totals) {
  const after = d.data.value / Math.max(totals.comparison, 1);
  const before = d.data.base / Math.max(totals.base, 1);
  return [
    line(d.data.name, ''),
    line('kind', d.data.kind),
    line('before', `${d.data.base} samples (${percent(before)})`),
    line('after', `${d.data.value} samples (${percent(after)})`),
    line('change', `${after >= before ? '+' : ''}${((after - before) * 100).toFixed(2)} points of the total`),
  ];
}

// Renders `tree` into `container`; returns {search(term), resetZoom(), destroy()}.
export function renderFlame(container, tree, options = {}) {
  container.replaceChildren();
  const width = Math.max(container.clientWidth || 0, 600);
  const diff = options.diff;
  const tooltip = makeTooltip(diff ? (d) => describeDiff(d, diff) : (d) => describeFrame(d, tree.value));
  const chart = flamegraph()
    .width(width)
    .cellHeight(18)
    .transitionDuration(200)
    .minFrameSize(1)
    .sort(true)
    .tooltip(tooltip)
    .setColorMapper((d) => {
      if (d.highlight) return '#e600e6';
      return diff ? diffColor(d) : kindColor(d.data.kind, d.data.name);
    });
  if (options.details) chart.setDetailsElement(options.details);
  select(container).datum(tree).call(chart);
  return {
    search: (term) => (term ? chart.search(term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : chart.clear()),
    resetZoom: () => chart.resetZoom(),
    destroy: () => {
      chart.destroy();
      tooltip.destroy();
    },
  };
}
