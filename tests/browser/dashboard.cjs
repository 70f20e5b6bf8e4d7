// Browser test of the dashboard: Debian's chromium driven by playwright-core against a running
// perfwatchd.
//   node dashboard.cjs BASE_URL TARGET OUT_DIR DIFF_QUERY GREW SHRANK FUNCTION FUNCTION...
// Opens the overview (its probe states too), opens the target, finds each FUNCTION in the rendered flame graph, zooms by
// clicking, searches, opens the differential view, then the diff of the ranges in DIFF_QUERY
// (from=..&to=..&base_from=..&base_to=..), where GREW must be drawn red and SHRANK blue. Saves a
// screenshot of each step in OUT_DIR; exits non-zero with the failed check on stderr.
const assert = require('node:assert/strict');
const { overviewRow, run, withBrowser } = require('./browser.cjs');

const [baseUrl, target, outDir, diffQuery, grew, shrank, ...functions] = process.argv.slice(2);
if (!baseUrl || !target || !outDir || !diffQuery || !grew || !shrank || functions.length < 2) {
  console.error('usage: node dashboard.cjs BASE_URL TARGET OUT_DIR DIFF_QUERY GREW SHRANK FUNCTION FUNCTION...');
  process.exit(2);
}

async function main() {
  await withBrowser(baseUrl, outDir, async (session) => {
    const { page, ready, shot, checkClean } = session;
    // Overview: the target is listed with its samples.
    const row = await overviewRow(session, baseUrl, target);
    assert.ok(Number(await row.locator('td.num').innerText()) > 0, 'the overview shows no samples for the target');
    // The probe families' states, each with its badge: the sampler runs; the LLC has a state of its own.
    const sampler = page.locator('#probes tr[data-family="cpu_sampler"]');
    await sampler.waitFor();
    assert.equal(await sampler.getAttribute('data-state'), 'running');
    assert.equal(await sampler.locator('.probe-running').innerText(), 'running');
    assert.match(await page.locator('#probes tr[data-family="llc"]').getAttribute('data-state'), /^(running|unsupported)$/);
    await shot('overview.png');

    // Target page: the workload's functions are frames of the rendered flame graph.
    await row.locator('a').first().click();
    await ready();
    assert.equal(await page.locator('#target-name').innerText(), target);
    for (const fn of functions) {
      await page.waitForSelector(`#flame svg g.frame[name="${fn}"]`, { timeout: 20000 });
    }
    // Labels are drawn after the transition.
    await page.waitForFunction((fn) => [...document.querySelectorAll('#flame .d3-flame-graph-label')]
      .some((d) => d.textContent === fn), functions[0]);
    const svgWidth = await page.locator('#flame svg').evaluate((s) => s.getBoundingClientRect().width);
    const widthOf = (fn) => page.locator(`#flame svg g.frame[name="${fn}"] rect`).first()
      .evaluate((r) => r.getBoundingClientRect().width);
    const before = await widthOf(functions[1]);
    assert.ok(before < svgWidth * 0.9, `${functions[1]} already spans the graph before zooming`);
    // Tooltip with counts and shares on hover.
    await page.locator(`#flame svg g.frame[name="${functions[0]}"]`).first().hover();
    const tip = page.locator('.flame-tip');
    await tip.waitFor({ state: 'visible' });
    assert.match(await tip.innerText(), /samples\s+\d+ \(\d+\.\d+% of all/);
    // Cache hit rates: the application cache the test counted 30 hits and 10 misses of, and its chart.
    const lru = page.locator('#caches tr[data-cache="lru"]');
    await lru.waitFor({ timeout: 20000 });
    assert.equal(await lru.locator('.hit-ratio').innerText(), '75.0%');
    await page.locator('#caches .cache-plot canvas').waitFor();
    assert.match(await page.locator('#caches .u-legend').innerText(), /lru/);
    await shot('target.png');

    // Zoom: clicking a frame widens it to the whole graph and hides the others.
    await page.locator(`#flame svg g.frame[name="${functions[1]}"]`).first().click();
    await page.waitForFunction(([fn, w]) => {
      const r = document.querySelector(`#flame svg g.frame[name="${fn}"] rect`);
      return r && r.getBoundingClientRect().width > w * 0.95;
    }, [functions[1], svgWidth], { timeout: 10000 });
    const hidden = await page.locator(`#flame svg g.frame[name="${functions[0]}"] rect`).evaluateAll(
      (rects) => rects.every((r) => r.getBoundingClientRect().width < 1));
    assert.ok(hidden, `${functions[0]} is still drawn after zooming into ${functions[1]}`);
    await shot('zoomed.png');
    await page.click('#flame-reset');

    // Search highlights the matching frames.
    await page.fill('#flame-search', functions[2] || functions[0]);
    await page.waitForFunction((fn) => {
      const r = document.querySelector(`#flame svg g.frame[name="${fn}"] rect`);
      return r && r.getAttribute('fill') === '#e600e6';
    }, functions[2] || functions[0]);
    assert.match(await page.locator('#flame-details').innerText(), /search: \d+ of \d+ total samples/);

    // Differential view: the tab (default base: the period before the comparison), then two given ranges.
    await page.click('#tab-diff');
    await ready();
    assert.match(await page.locator('#flame-details').innerText(), /base \d+ samples, comparison \d+ samples/);
    await page.goto('about:blank');  // a fresh load, not a hash change the old view could answer
    await page.goto(`${baseUrl}/#/target/${encodeURIComponent(target)}?view=diff&${diffQuery}`);
    await ready();
    const drawn = (fn) => page.waitForFunction((name) => [...document.querySelectorAll(`#flame svg g.frame[name="${name}"] rect`)]
      .some((r) => r.getBoundingClientRect().width > 2), fn, { timeout: 20000 });
    await drawn(grew);
    await drawn(shrank);
    // Growth is red (r > b), shrink blue (b > r).
    const colour = (fn) => page.locator(`#flame svg g.frame[name="${fn}"] rect`).first().evaluate((r) => {
      const [red, , blue] = r.getAttribute('fill').match(/\d+/g).map(Number);
      return red > blue ? 'red' : blue > red ? 'blue' : 'grey';
    });
    assert.equal(await colour(grew), 'red', `${grew} grew but is not red`);
    assert.equal(await colour(shrank), 'blue', `${shrank} shrank but is not blue`);
    await page.locator(`#flame svg g.frame[name="${shrank}"]`).first().hover();
    assert.match(await page.locator('.flame-tip').innerText(), /before\s+\d+ samples[\s\S]*after\s+\d+ samples[\s\S]*change\s+-/);
    await shot('diff.png');

    checkClean();
    console.log(`ok: overview, target, ${functions.length} functions, zoom, search, diff; screenshots in ${outDir}`);
  });
}

run(main);
