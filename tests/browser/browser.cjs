// Shared by the browser tests: Debian's chromium through playwright-core on a fresh profile, a page
// that records its errors and any request leaving the daemon, and helpers to wait for a view and to
// save screenshots.
const { chromium } = require('playwright-core');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// Runs `test(session)` with session = {page, ready(), shot(name), checkClean()}; closes the browser
// and removes the profile afterwards, whatever happens.
async function withBrowser(baseUrl, outDir, test) {
  fs.mkdirSync(outDir, { recursive: true });
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perfwatch-chromium-'));
  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    // The page's CSP forbids eval, which playwright's waitForFunction uses; the page itself runs as served.
    bypassCSP: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const session = {
      page,
      errors: [],
      offsite: [],
      ready: () => page.waitForSelector('body[data-ready="true"]', { timeout: 20000 }),
      shot: (name) => page.screenshot({ path: path.join(outDir, name), fullPage: true }),
      // No page errors, and nothing requested outside the daemon.
      checkClean: () => {
        assert.deepEqual(session.errors, [], 'the page logged errors');
        assert.deepEqual(session.offsite, [], 'the page requested something outside the daemon');
      },
    };
    page.on('pageerror', (e) => session.errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') session.errors.push(m.text()); });
    // Nothing may come from the internet: every request goes to the daemon.
    page.on('request', (r) => { if (!r.url().startsWith(baseUrl) && !r.url().startsWith('data:')) session.offsite.push(r.url()); });
    await test(session);
  } finally {
    await browser.close();
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
}

// The overview of the last 15 minutes: the row of `target`, once listed.
async function overviewRow({ page, ready }, baseUrl, target) {
  await page.goto(`${baseUrl}/#/?since=15m`);
  await ready();
  const row = page.locator(`tr[data-target="${target}"]`);
  await row.waitFor();
  return row;
}

// Runs main() as a script: a failed check exits non-zero with its stack on stderr.
function run(main) {
  main().catch((e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  });
}

module.exports = { withBrowser, overviewRow, run };
