// The overview's T1..T5 column: one badge per tier, coloured by the state of the target's operations
// in it over the range (the API's `tiers`): ok (every one with calls within its threshold), slow (one
// is not), no_data (operations, none with calls), none (no operation of that tier). "own" gathers the
// operations with their own threshold.
import { formatNs } from './latency.js';

const stateText = { ok: 'within its threshold', slow: 'slower than its threshold', no_data: 'no calls in range' };

export function tierCell(target) {
  const td = document.createElement('td');
  td.className = 'tiers';
  const tiers = target.tiers || [];
  if (!tiers.some((t) => t.state !== 'none')) {
    td.textContent = 'no latency data';
    td.classList.add('muted');
    return td;
  }
  for (const t of tiers) {
    const badge = document.createElement('span');
    badge.className = `tier tier-${t.state}`;
    badge.dataset.tier = t.name;
    badge.dataset.state = t.state;
    badge.textContent = t.name;
    badge.title = t.operations.length
      ? `${t.name}: ${t.operations.map((op) => `${op.name} ${stateText[op.verdict]}${op.verdict === 'no_data' ? '' : ` (p99 ${formatNs(op.p99_ns)}, threshold ${formatNs(op.threshold_ns)})`}`).join('; ')}`
      : `${t.name}: no operation`;
    td.append(badge);
  }
  return td;
}

// The badges' key, under the overview's table.
export function tierLegend() {
  const p = document.createElement('p');
  p.className = 'legend tier-legend';
  for (const [state, text] of [['ok', 'within threshold'], ['slow', 'slower than threshold'], ['no_data', 'no calls'], ['none', 'no operation']]) {
    const badge = document.createElement('span');
    badge.className = `tier tier-${state}`;
    badge.textContent = text;
    p.append(badge);
  }
  return p;
}
