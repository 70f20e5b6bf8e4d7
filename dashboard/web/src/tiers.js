// The overview's T1..T5 column. Targets are graded once latency data exists (issue 4): this cell then
// colours each tier by its state; until then it says there is nothing to grade.
export function tierCell(target) {
  const td = document.createElement('td');
  td.className = 'tiers';
  const grades = target.tiers || [];
  if (!grades.length) {
    td.textContent = 'no latency data';
    td.classList.add('muted');
    return td;
  }
  for (const g of grades) {
    const badge = document.createElement('span');
    badge.className = `tier tier-${g.state}`;
    badge.textContent = g.name;
    badge.title = `${g.name}: ${g.state}`;
    td.append(badge);
  }
  return td;
}
