// What every browser test of the dashboard does around its checks: Debian's chromium, driven by
// playwright-core, on a fresh profile; page errors and requests outside the daemon collected so the
// test can insist there were none.
const { chromium } = require('playwright-core');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

async function openDashboard(baseUrl, outDir) {
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
  const errors = [];
  const offsite = [];
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  // Nothing may come from the internet: every request goes to the daemon.
  page.on('request', (r) => { if (!r.url().startsWith(baseUrl) && !r.url().startsWith('data:')) offsite.push(r.url()); });
  return {
    page,
    ready: () => page.waitForSelector('body[data-ready="true"]', { timeout: 20000 }),
    shot: (name) => page.screenshot({ path: path.join(outDir, name), fullPage: true }),
    checkClean: () => {
      assert.deepEqual(errors, [], 'the page logged errors');
      assert.deepEqual(offsite, [], 'the page requested something outside the daemon');
    },
    close: async () => {
      await browser.close();
      fs.rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

// Runs main; a failed check is printed and exits non-zero.
function run(main) {
  main().catch((e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  });
}

module.exports = { openDashboard, run };
