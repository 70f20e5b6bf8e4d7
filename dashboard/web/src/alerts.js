// The Alerts page (#/alerts): alerts firing or pending now or that changed state in the range,
// coloured by state, each with its state history (GET /api/v1/alerts).
import { getJson } from './api.js';
import { el, formatTime, showError } from './dom.js';
import { rangeFromQuery, rangeParams, rangePicker } from './range.js';
import './alerts.css';

const states = ['firing', 'pending', 'inactive'];

// What the UI calls an alert: firing, pending, resolved (it fired and cleared) or inactive (it was
// pending and cleared before firing).
export function alertStatus(alert) {
  if (alert.state !== 'inactive') return alert.state;
  return alert.ends_at ? 'resolved' : 'inactive';
}

export function alertName(alert) {
  return alert.labels.alertname || alert.rule;
}

// target, and operation or cache when the alert has one (as `perfwatch alerts` shows it).
export function alertSubject(alert) {
  const parts = [alert.labels.target, alert.labels.operation || alert.labels.cache].filter(Boolean);
  return parts.join('/') || '–';
}

function historyList(alert) {
  if (!alert.history.length) return el('p', { class: 'muted' }, 'No state change in this range.');
  return el('ol', { class: 'alert-history' }, ...alert.history.map((e) => el('li', { 'data-state': e.state },
    el('span', { class: `badge state-${e.state}` }, e.state), ' ', formatTime(e.at),
    e.summary ? el('span', { class: 'muted' }, ` ${e.summary}`) : null)));
}

function alertRows(alert) {
  const status = alertStatus(alert);
  const target = alert.labels.target;
  const subject = target
    ? el('a', { href: `#/target/${encodeURIComponent(target)}?${new URLSearchParams({ host: alert.host })}` }, alertSubject(alert))
    : alertSubject(alert);
  return [
    el('tr', { class: `alert-row state-${status}`, 'data-fingerprint': alert.fingerprint, 'data-status': status },
      el('td', {}, el('span', { class: `badge state-${status}` }, status)),
      el('td', { class: 'alert-name' }, alertName(alert)),
      el('td', {}, subject),
      el('td', {}, alert.host),
      el('td', {}, alert.annotations.summary || ''),
      el('td', {}, formatTime(alert.starts_at)),
      el('td', {}, formatTime(alert.ends_at))),
    el('tr', { class: 'alert-history-row', 'data-fingerprint': alert.fingerprint },
      el('td', { colspan: '7' }, historyList(alert))),
  ];
}

// `go(query)` navigates to the page with another query.
export async function alertsPage(main, query, go) {
  const range = query.get('from') || query.get('since') ? rangeFromQuery(query) : { since: '24h' };
  const state = states.includes(query.get('state')) ? query.get('state') : '';
  const target = query.get('target') || '';
  const filters = { state: state || undefined, target: target || undefined };
  const stateSelect = el('select', { id: 'alerts-state', onchange: (e) => go({ ...rangeParams(range), ...filters, state: e.target.value || undefined }) },
    el('option', { value: '' }, 'any state'), ...states.map((s) => el('option', { value: s }, s)));
  stateSelect.value = state;
  const list = el('div', { class: 'alerts', id: 'alerts-list' }, el('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    el('h1', {}, 'Alerts', target ? el('span', { class: 'muted' }, ` for ${target}`) : null),
    rangePicker('Range', range, (r) => go({ ...rangeParams(r), ...filters })),
    el('div', { class: 'toolbar' }, el('label', {}, 'State ', stateSelect)),
    list,
  );
  try {
    const data = await getJson('/api/v1/alerts', { ...rangeParams(range), state, target });
    if (!data.alerts.length) {
      list.replaceChildren(el('p', { class: 'muted empty' }, 'No alert is active or changed state in this range.'));
      return;
    }
    list.replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ...['State', 'Alert', 'Subject', 'Host', 'Summary', 'Fired', 'Resolved'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...data.alerts.flatMap(alertRows))));
  } catch (e) {
    showError(list, e);
  }
}
