// Time ranges: presets relative to now, or explicit from/to. Explicit ends are rounded to whole
// seconds, the API's resolution.
export const presets = [
  ['15m', 15 * 60], ['1h', 3600], ['6h', 6 * 3600], ['24h', 24 * 3600], ['7d', 7 * 24 * 3600],
];

export function toIso(date) {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// {since} or {from, to} from the hash's query.
export function rangeFromQuery(q, prefix = '') {
  const from = q.get(prefix + 'from');
  if (from) return { from, to: q.get(prefix + 'to') || undefined };
  return { since: q.get(prefix + 'since') || '1h' };
}

export function rangeParams(range, prefix = '') {
  const out = {};
  for (const [k, v] of Object.entries(range)) if (v) out[prefix + k] = v;
  return out;
}

// Absolute {from, to} Dates of a range (presets end now).
export function resolve(range) {
  if (range.from) return { from: new Date(range.from), to: range.to ? new Date(range.to) : new Date() };
  const preset = presets.find(([name]) => name === range.since);
  const seconds = preset ? preset[1] : 3600;
  const to = new Date();
  return { from: new Date(to.getTime() - seconds * 1000), to };
}

function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// A picker: preset buttons and a from/to pair; onChange gets the new range.
export function rangePicker(label, range, onChange) {
  const box = document.createElement('div');
  box.className = 'range-picker';
  const title = document.createElement('span');
  title.className = 'range-label';
  title.textContent = label;
  box.append(title);
  for (const [name] of presets) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = name;
    b.dataset.preset = name;
    if (range.since === name) b.classList.add('active');
    b.addEventListener('click', () => onChange({ since: name }));
    box.append(b);
  }
  const { from, to } = resolve(range);
  const fromInput = Object.assign(document.createElement('input'), { type: 'datetime-local', value: localInput(from) });
  const toInput = Object.assign(document.createElement('input'), { type: 'datetime-local', value: localInput(to) });
  fromInput.className = 'range-from';
  toInput.className = 'range-to';
  const apply = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Apply' });
  apply.className = 'range-apply';
  apply.addEventListener('click', () => {
    const f = new Date(fromInput.value);
    const t = new Date(toInput.value);
    if (Number.isNaN(f.getTime()) || Number.isNaN(t.getTime()) || t <= f) {
      apply.setCustomValidity('"to" must be later than "from"');
      apply.reportValidity();
      return;
    }
    onChange({ from: toIso(f), to: toIso(t) });
  });
  box.append(fromInput, document.createTextNode('–'), toInput, apply);
  return box;
}
