// The overview's probe families: per host, the state of each (the API's `hosts`) as of its newest window,
// so that a family the kernel refused (failed, unsupported) is told apart from one that measured nothing.
import { el, formatTime } from './dom.js';

const stateText = {
  running: 'measuring',
  degraded: 'measuring in part',
  failed: 'cannot load or attach here',
  unsupported: 'not supported here',
  off: 'not configured',
};

export function probeStates(hosts) {
  if (!hosts || !hosts.length) return el('p', { class: 'muted' }, 'No probe states stored in this range yet.');
  return el('div', {}, ...hosts.map((h) => el('div', { class: 'probe-host', 'data-host': h.host },
    el('h3', {}, `${h.host}, window ending ${formatTime(h.window_end)}`),
    el('table', { class: 'probe-table' },
      el('thead', {}, el('tr', {}, ...['Probe family', 'State', 'Detail'].map((t) => el('th', {}, t)))),
      el('tbody', {}, ...h.probes.map((p) => el('tr', { 'data-family': p.family, 'data-state': p.state },
        el('td', {}, p.family),
        el('td', {}, el('span', { class: `probe probe-${p.state}`, title: stateText[p.state] || p.state }, p.state)),
        el('td', { class: 'probe-detail' }, p.detail || '–'))))))));
}
