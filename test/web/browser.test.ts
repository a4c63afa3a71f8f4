// The web console end to end in headless Chromium (playwright-core drives the system's /usr/bin/chromium)
// against a real server on loopback: sign-in (a wrong token is refused), the dashboard, an import by path and
// an upload, the library, a distribution point setting saved and a bad one refused next to its field, a client served by
// multicast seen on the sessions and clients pages, and a refused token returning to the sign-in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
// page.evaluate() gets its browser-side code as strings: this file is compiled without the DOM's types.
import { privatePools, run } from '../server/helpers.js';
import { startWebServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Playwright's waits; generous because the machine is shared (a condition is awaited, never a duration). */
const WAIT_MS = 20_000;

/**
 * Waits until an expression is true in the page. Not page.waitForFunction: when its first check fails it polls
 * with eval inside the page, which the console's CSP (rightly) forbids; page.evaluate goes through the devtools
 * protocol instead.
 */
async function waitInPage(page: Page, expression: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`still false after ${WAIT_MS} ms: ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('web console in a browser', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install the Debian package chromium (.ci/run does) to run the browser test` }, async (t) => {
  const { dir, server: s, atEnd } = await startWebServer(t, 'fc-web-browser-');
  const pools = privatePools();
  assert.equal((await s.api('PATCH', '/api/v1/dp', pools)).status, 200);
  const imagePath = join(dir, 'disk.img');
  writeFileSync(imagePath, randomBytes(2 * 1024 * 1024 + 4321));
  const uploadPath = join(dir, 'winpe x64.img');
  writeFileSync(uploadPath, randomBytes(300_000));

  // launchPersistentContext gives Chromium its own fresh --user-data-dir (Playwright refuses it in args).
  const context: BrowserContext = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 900 },
  });
  atEnd(() => context.close());
  context.setDefaultTimeout(WAIT_MS);
  const page: Page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text());
  });

  await t.test('sign-in refuses a wrong token and opens the dashboard with the right one', async () => {
    await page.goto(s.url);
    const token = page.getByLabel('Admin token');
    await token.fill('fct_not-the-token');
    await token.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'not valid for this server' }).waitFor();
    await token.fill(s.token);
    await token.press('Enter');
    await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/console/');
    const dp = page.getByRole('region', { name: 'Distribution point' });
    await dp.getByText('enabled', { exact: true }).waitFor();
    await dp.getByText(`${pools.addressStart} – ${pools.addressEnd}`).waitFor();
    await page.getByRole('region', { name: 'Live sessions' }).getByText('No session is live').waitFor();
    // The token is in sessionStorage, never in the address.
    assert.doesNotMatch(page.url(), new RegExp(s.token));
    assert.equal(await page.evaluate(`sessionStorage.getItem('fleetcast.adminToken')`), s.token);
  });

  await t.test('an image imported by its path on the server appears in the library', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Images' }).click();
    await page.getByRole('heading', { name: 'Images', level: 1 }).waitFor();
    // Focus moves to the new page's heading (keyboard and screen-reader users start there).
    await waitInPage(page, `document.activeElement?.tagName === 'H1' && document.activeElement.textContent === 'Images'`);
    await page.getByRole('region', { name: 'Library' }).getByText('The library is empty').waitFor();
    // A relative path is refused by the API, next to the path field.
    const form = page.getByRole('form', { name: 'Import an image' });
    await form.getByLabel('Path of the file on the server').fill('disk.img');
    await form.getByLabel('Name', { exact: true }).fill('win11-lab');
    await form.getByRole('button', { name: 'Import' }).click();
    await form.getByText(/must be absolute/).waitFor();
    assert.equal(await form.getByLabel('Path of the file on the server').getAttribute('aria-invalid'), 'true');

    await form.getByLabel('Path of the file on the server').fill(imagePath);
    await form.getByLabel('Version', { exact: true }).fill('23H2');
    await form.getByRole('button', { name: 'Import' }).click();
    await page.getByRole('status').filter({ hasText: 'Import of win11-lab started' }).waitFor();
    const library = page.getByRole('region', { name: 'Library' });
    const row = library.getByRole('row').filter({ has: page.getByRole('link', { name: 'win11-lab' }) });
    await row.waitFor();
    assert.match((await row.innerText()).replace(/\s+/g, ' '), /win11-lab 23H2 raw 2\.0 MiB multicast/);
    await page.getByRole('region', { name: 'Imports' }).getByText('completed').waitFor();

    // An upload from this computer: the name comes from the file's name; the library shows it when imported.
    await form.getByLabel('Upload from this computer').check();
    await form.getByLabel('File to upload').setInputFiles(uploadPath);
    assert.equal(await form.getByLabel('Name', { exact: true }).inputValue(), 'winpe-x64');
    await form.getByRole('button', { name: 'Import' }).click();
    await page.getByRole('status').filter({ hasText: 'Import of winpe-x64 started' }).waitFor();
    await library.getByRole('link', { name: 'winpe-x64' }).waitFor();
    assert.equal((await s.api('GET', '/api/v1/images/winpe-x64')).body.size, 300_000);

    await row.getByRole('link', { name: 'win11-lab' }).click();
    await page.getByRole('heading', { name: 'Image win11-lab', level: 1 }).waitFor();
    await page.getByText((await s.api('GET', '/api/v1/images/win11-lab')).body.digest).waitFor();
  });

  await t.test('a distribution point setting is saved; a bad one is refused next to its field and not saved', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Distribution point' }).click();
    const form = page.getByRole('form', { name: 'Distribution point settings' });
    await form.getByLabel('Maximum clients').fill('50');
    await form.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    assert.equal((await s.api('GET', '/api/v1/dp')).body.maxClients, 50);

    await form.getByLabel('Enable scheduled multicast').check();
    const minimum = form.getByLabel('Minimum session size (clients)');
    await minimum.fill('500');
    await form.getByRole('button', { name: 'Save' }).click();
    const error = page.locator(`#${await minimum.getAttribute('id')}-error`);
    await error.getByText(/more than maxClients 50/).waitFor();
    assert.equal(await minimum.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(`document.activeElement?.getAttribute('name')`), 'minimumSessionSize', 'focus moves to the invalid field');
    const after = (await s.api('GET', '/api/v1/dp')).body;
    assert.equal(after.minimumSessionSize, 20);
    assert.equal(after.scheduledMulticast, false);
  });

  await t.test('a client served by multicast shows on the sessions and clients pages', async () => {
    const fetched = await run(['fetch', '--server', s.url, '--image', 'win11-lab', '-o', join(dir, 'pc1.img'), '--interface', 'lo', '--name', 'pc1', '--timeout', '60']).done;
    assert.equal(fetched.code, 0, fetched.stderr);
    await page.getByRole('navigation').getByRole('link', { name: 'Sessions' }).click();
    await page.getByRole('heading', { name: 'Sessions', level: 1 }).waitFor();
    const sessionRow = page.getByRole('row').filter({ hasText: 'win11-lab' }).filter({ hasText: 'completed' });
    await sessionRow.waitFor();
    await sessionRow.getByRole('link', { name: /^#\d+$/ }).click();
    await page.getByRole('heading', { name: /^Session #\d+$/, level: 1 }).waitFor();
    const clients = page.getByRole('region', { name: 'Clients' });
    await clients.getByRole('row').filter({ hasText: 'pc1' }).filter({ hasText: 'completed' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel session' }).count(), 0, 'an ended session cannot be cancelled');

    await page.getByRole('navigation').getByRole('link', { name: 'Clients' }).click();
    await page.getByRole('row').filter({ hasText: 'pc1' }).filter({ hasText: 'multicast' }).filter({ hasText: 'completed' }).waitFor();
  });

  await t.test('a token the server refuses returns to the sign-in with a message', async () => {
    await page.evaluate(`sessionStorage.setItem('fleetcast.adminToken', 'fct_revoked')`);
    // Opened afresh, not through the menu: the page left open (clients) refreshes itself, and a refresh that
    // meets the refused token first signs out and takes the menu away under a pending click (CI saw that).
    await page.goto(new URL('/console/', s.url).href);
    await page.getByRole('alert').filter({ hasText: /Signed out: the admin token is not valid/ }).waitFor();
    await page.getByLabel('Admin token').waitFor();
    assert.equal(await page.evaluate(`sessionStorage.getItem('fleetcast.adminToken')`), null);
  });

  assert.deepEqual(pageErrors, [], 'no script errors and no CSP violations');
});
