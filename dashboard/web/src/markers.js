// Deploy markers and alert spans on the time axis of the target page's range: a strip under the
// range, with a vertical marker per deploy and a bar per firing (red) or pending (amber) period, each
// with a tooltip; below it, the same as a list.
import { getJson } from './api.js';
import { alertName, alertStatus, alertSubject } from './alerts.js';
import { el, formatTime, showError } from './dom.js';
import { rangeParams } from './range.js';

// The periods an alert spent pending or firing within [from, to], from its history in the range. An
// alert already active when the range begins has no event that opens it: its first event (or, without
// one, its current state) says what it was.
export function alertSpans(alert, from, to) {
  const spans = [];
  let open = null;
  const close = (end) => {
    if (open && end > open.start) spans.push({ ...open, end });
    open = null;
  };
  const first = alert.history[0];
  const before = !first ? (alert.state !== 'inactive' ? alert.state : null)
    : { resolved: 'firing', cancelled: 'pending' }[first.state] || null;
  if (before) open = { state: before, start: from };
  for (const e of alert.history) {
    const at = new Date(e.at);
    close(at);
    if (e.state === 'pending' || e.state === 'firing') open = { state: e.state, start: at };
  }
  close(to);
  return spans;
}

function deployTip(d) {
  return [`Deploy at ${formatTime(d.at)}`, d.summary,
    ...d.changes.map((c) => `${c.kind} ${c.path}: ${c.before || '–'} → ${c.after || '–'}`)].join('\n');
}

function spanTip(alert, span) {
  return [`${alertName(alert)} ${span.state} (${alertSubject(alert)})`, alert.annotations.summary || '',
    `${formatTime(span.start.toISOString())} – ${formatTime(span.end.toISOString())}`].filter(Boolean).join('\n');
}

// One tooltip per strip, shown beside the item under the pointer.
function withTip(strip, tip, item, text) {
  item.addEventListener('mouseenter', () => {
    tip.textContent = text;
    tip.hidden = false;
    const box = strip.getBoundingClientRect();
    const at = item.getBoundingClientRect();
    tip.style.left = `${Math.min(at.left - box.left, box.width - 300)}px`;
    tip.style.top = `${at.bottom - box.top + 4}px`;
  });
  item.addEventListener('mouseleave', () => { tip.hidden = true; });
  return item;
}

// Fills `panel` (keeping its heading) with the timeline of the target's deploys and alerts in `range`.
export async function drawTimeline(panel, target, host, range) {
  const heading = panel.querySelector('h2');
  const params = { host, ...rangeParams(range) };
  try {
    const [deploys, alerts] = await Promise.all([
      getJson(`/api/v1/targets/${encodeURIComponent(target)}/deploys`, params),
      getJson('/api/v1/alerts', { ...params, target }),
    ]);
    const from = new Date(deploys.from);
    const to = new Date(deploys.to);
    const x = (t) => `${(100 * (t - from)) / (to - from)}%`;
    const tip = el('div', { class: 'timeline-tip' });
    tip.hidden = true;
    const strip = el('div', { class: 'timeline', id: 'timeline' }, tip);
    const list = el('ul', { class: 'timeline-list' });
    for (const a of alerts.alerts) {
      for (const s of alertSpans(a, from, to)) {
        const bar = el('div', { class: `span ${s.state}`, 'data-fingerprint': a.fingerprint, 'data-state': s.state });
        bar.style.left = x(s.start);
        bar.style.width = `calc(${x(s.end)} - ${x(s.start)})`;
        strip.append(withTip(strip, tip, bar, spanTip(a, s)));
      }
      list.append(el('li', {}, el('span', { class: `badge state-${alertStatus(a)}` }, alertStatus(a)), ' ',
        el('a', { href: `#/alerts?${new URLSearchParams({ target, ...rangeParams(range) })}` }, alertName(a)), ' ',
        a.annotations.summary || ''));
    }
    for (const d of deploys.deploys) {
      const marker = el('div', { class: 'marker deploy', 'data-at': d.at });
      marker.style.left = x(new Date(d.at));
      strip.append(withTip(strip, tip, marker, deployTip(d)));
      list.append(el('li', { class: 'deploy' }, `Deploy ${formatTime(d.at)}: ${d.summary}`));
    }
    const empty = !alerts.alerts.length && !deploys.deploys.length;
    panel.replaceChildren(heading, strip,
      el('div', { class: 'timeline-axis' }, el('span', {}, formatTime(deploys.from)), el('span', {}, formatTime(deploys.to))),
      el('div', { class: 'timeline-legend' }, 'Deploys: blue markers · firing: red · pending: amber'),
      empty ? el('p', { class: 'muted' }, 'No alerts or deploy markers in this range.') : list);
  } catch (e) {
    const box = el('div');
    panel.replaceChildren(heading, box);
    showError(box, e);
  }
}
