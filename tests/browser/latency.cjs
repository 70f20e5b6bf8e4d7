// Browser test of the dashboard's latency views against a running perfwatchd that measured a workload.
//   node latency.cjs BASE_URL TARGET OUT_DIR TIER=STATE... OPERATION=VERDICT:CALLS...
// e.g. T1=slow T3=ok T2=none fast=ok:4 medium=slow:3 slow=ok:2.
// Overview: the target's tier badges carry those states, coloured (ok green, slow red). Target page:
// the latency table lists each operation with its calls and verdict; each operation's uPlot chart
// draws the threshold as a dashed line across the plot, with p99 above it for slow operations and
// below it for the others; dragging across a chart around the calls makes that stretch the page's range
// (the range picker shows it, and the calls are still all there). Screenshots in OUT_DIR.
const assert = require('node:assert/strict');
const { overviewRow, run, withBrowser } = require('./browser.cjs');

const [baseUrl, target, outDir, ...expectations] = process.argv.slice(2);
const tiers = expectations.filter((e) => /^(T[1-5]|own)=/.test(e)).map((e) => e.split('='));
const operations = expectations.filter((e) => !/^(T[1-5]|own)=/.test(e)).map((e) => {
  const [name, rest] = e.split('=');
  const [verdict, calls] = rest.split(':');
  return { name, verdict, calls: Number(calls) };
});
if (!baseUrl || !target || !outDir || !tiers.length || !operations.length) {
  console.error('usage: node latency.cjs BASE_URL TARGET OUT_DIR TIER=STATE... OPERATION=VERDICT:CALLS...');
  process.exit(2);
}

// The uPlot colours of dashboard/web/src/latency.js.
const thresholdRgb = [0xdc, 0x26, 0x26];
const p99Rgb = [0x7c, 0x3a, 0xed];

// In the chart's canvas: the row with the most threshold-coloured pixels (the dashed line) and how much
// of the plot's width it covers, and the vertical extent of the p99-coloured pixels (its points).
function scanChart(canvas, [threshold, p99]) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const data = ctx.getImageData(0, 0, width, height).data;
  const near = (i, rgb) => data[i + 3] > 200 && rgb.every((c, k) => Math.abs(data[i + k] - c) < 40);
  let best = { row: -1, count: 0 };
  const p99Rows = [];
  const p99Cols = [];
  for (let y = 0; y < height; y++) {
    let count = 0;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      if (near(i, threshold)) count++;
      if (near(i, p99)) {
        p99Rows.push(y);
        p99Cols.push(x);
      }
    }
    if (count > best.count) best = { row: y, count };
  }
  const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
  return {
    width,
    cssScale: canvas.getBoundingClientRect().width / width,
    thresholdRow: best.row,
    thresholdCoverage: best.count / width,
    p99Row: p99Rows.length ? mean(p99Rows) : null,
    p99Col: p99Cols.length ? mean(p99Cols) : null,
  };
}

async function main() {
  await withBrowser(baseUrl, outDir, async (session) => {
    const { page, ready, shot, checkClean } = session;
    // Overview: the target's badges per tier, in their state's colour.
    const row = await overviewRow(session, baseUrl, target);
    for (const [tier, state] of tiers) {
      const badge = row.locator(`.tier[data-tier="${tier}"]`);
      assert.equal(await badge.getAttribute('data-state'), state, `${tier} of ${target}`);
      const [r, g] = (await badge.evaluate((b) => getComputedStyle(b).backgroundColor)).match(/\d+/g).map(Number);
      if (state === 'slow') assert.ok(r > g + 60, `${tier} is slow but not drawn red (${r}, ${g})`);
      if (state === 'ok') assert.ok(g > r + 30, `${tier} is ok but not drawn green (${r}, ${g})`);
    }
    assert.match(await row.locator(`.tier[data-state="slow"]`).first().getAttribute('title'), /slower than its threshold \(p99 /);
    await shot('latency-overview.png');

    // Target page: the table of merged percentiles and verdicts.
    await row.locator('a').first().click();
    await ready();
    const table = page.locator('#latency table.latency-table');
    await table.waitFor();
    for (const op of operations) {
      const tr = table.locator(`tr[data-operation="${op.name}"]`);
      assert.equal(Number(await tr.locator('td.num').first().innerText()), op.calls, `calls of ${op.name}`);
      assert.equal(await tr.locator('td.verdict').getAttribute('class'), `verdict verdict-${op.verdict}`, op.name);
    }

    // One chart per operation: the threshold dashed across it, p99 on the right side of it.
    const charts = {};
    for (const op of operations) {
      const chart = page.locator(`.latency-chart[data-operation="${op.name}"]`);
      await chart.locator('canvas').waitFor();
      assert.match(await chart.locator('.u-legend').innerText(), /threshold \((T\d|own) [\d.]+ (µs|ms|s)\)/);
      const scan = await chart.locator('canvas').evaluate(scanChart, [thresholdRgb, p99Rgb]);
      assert.ok(scan.thresholdCoverage > 0.4, `${op.name}: no threshold line across the chart (${JSON.stringify(scan)})`);
      assert.notEqual(scan.p99Row, null, `${op.name}: p99 is not drawn`);
      if (op.verdict === 'slow') assert.ok(scan.p99Row < scan.thresholdRow, `${op.name} is slow: p99 must be above the threshold`);
      else assert.ok(scan.p99Row > scan.thresholdRow, `${op.name} is ok: p99 must be below the threshold`);
      charts[op.name] = { chart, scan };
    }
    await page.locator('#latency-panel').scrollIntoViewIfNeeded();
    await shot('latency-target.png');

    // Dragging across the first chart around its calls sets the page's range: the picker and the
    // flame graph follow, and the latency table still counts every call.
    const { chart, scan } = charts[operations[0].name];
    const over = await chart.locator('.u-over').boundingBox();
    const canvasBox = await chart.locator('canvas').boundingBox();
    const x = canvasBox.x + scan.p99Col * scan.cssScale;
    const y = over.y + over.height / 2;
    const fromBefore = await page.locator('.range-from').first().inputValue();
    await page.mouse.move(Math.max(over.x + 1, x - 40), y);
    await page.mouse.down();
    await page.mouse.move(Math.min(over.x + over.width - 1, x + 40), y, { steps: 5 });
    await page.mouse.up();
    // The new page's picker shows the dragged range (the old one is gone once the hash changed).
    await page.waitForFunction((before) => /[?&]from=/.test(location.hash)
      && document.querySelector('.range-from').value !== before, fromBefore);
    await ready();
    await page.locator('#latency table.latency-table').waitFor();
    for (const op of operations) {
      const tr = page.locator(`#latency tr[data-operation="${op.name}"]`);
      assert.equal(Number(await tr.locator('td.num').first().innerText()), op.calls, `calls of ${op.name} in the dragged range`);
    }
    await shot('latency-zoomed.png');

    checkClean();
    console.log(`ok: latency overview (${tiers.length} tiers), ${operations.length} operations, charts, range sync; screenshots in ${outDir}`);
  });
}

run(main);
