/**
 * The studio page in a real browser (Debian's Chromium through playwright-core) against a running service:
 * generate and watch images arrive, cancel, style transfer, the interpolation slider, gallery paging, and
 * an API error shown in words. Screenshots of each step go to test-artifacts/studio/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, type Page, type Request, chromium } from 'playwright-core';
import { createApiKey } from '../src/auth/keys.ts';
import type { Config } from '../src/config.ts';
import { type Running, startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { tinyModelDir } from './support/model.ts';
import { encodePng } from '../src/images/png.ts';
import { startInProcessWorker } from './support/worker.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', 'test-artifacts', 'studio');
// CI installs Chromium (.ci/run); elsewhere the test says why it did not run
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : false;

let api: Running;
let worker: { stop(): Promise<void> } | null = null;
let browser: Browser;
let page: Page;
let config: Config;
/** How the page's "Delete this generation?" question is answered. */
let confirmDelete = true;

const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

before(async () => {
  if (skip) return;
  await mkdir(ARTIFACTS, { recursive: true });
  config = testConfig(await tinyModelDir());
  api = await startServices(config, { api: true, worker: false, migrate: true, auth: 'open' }, silentLogger());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('dialog', (d) => void (confirmDelete ? d.accept() : d.dismiss()));
  await page.goto(`http://127.0.0.1:${api.api!.port}/`);
  await page.waitForSelector('#model-picker option[value="tiny"]', { state: 'attached' });
  await page.waitForSelector('#model:has-text("32×32, reads the first 64 characters of a caption")');
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await api?.stop();
});

test('cancel: a queued job is canceled from its card', { skip }, async () => {
  await page.fill('#caption', 'a queued flower');
  await page.click('#generate');
  const card = '.job:has-text("a queued flower")';
  await page.waitForSelector(`${card}[data-status="QUEUED"]`);
  await shot('1-queued');
  await page.click(`${card} button.cancel`);
  await page.waitForSelector(`${card}[data-status="CANCELED"]`);
  assert.equal(await page.locator(`${card} button.cancel`).isHidden(), true);
  await shot('2-canceled');
});

test(
  'a job deleted elsewhere (another tab, the command line) reads "deleted" on its card, with nothing to cancel',
  { skip },
  async () => {
    await page.fill('#caption', 'a flower deleted elsewhere');
    await page.click('#generate');
    const card = page.locator('.job:has-text("a flower deleted elsewhere")');
    await card.locator('xpath=.').and(page.locator('[data-status="QUEUED"]')).waitFor();
    const id = await card.getAttribute('data-id');
    const res = await page.request.post(new URL('/graphql', page.url()).toString(), {
      data: { query: 'mutation($id: ID!) { deleteGeneration(id: $id) }', variables: { id } },
    });
    assert.equal(res.status(), 200);
    await page.waitForSelector(`.job[data-id="${id}"][data-status="DELETED"]`);
    assert.equal(await card.locator('.status').innerText(), 'deleted');
    assert.equal(await card.locator('button.cancel').isVisible(), false);
    assert.equal(await page.locator('#error').isVisible(), false, 'the card says it');
    await page.click(`.job[data-id="${id}"] button.delete`); // only its card is left to remove
    await page.waitForSelector(`.job[data-id="${id}"]`, { state: 'detached' });
    assert.equal(await page.locator('#error').isVisible(), false);
  },
);

test('delete: an unfinished job leaves its card and the gallery without an error', { skip }, async () => {
  await page.fill('#caption', 'a flower deleted while queued');
  await page.click('#generate');
  const card = '.job:has-text("a flower deleted while queued")';
  const item = '.gallery-item:has-text("a flower deleted while queued")';
  await page.waitForSelector(`${card}[data-status="QUEUED"]`);
  await page.waitForSelector(`${item}[data-status="QUEUED"]`);
  // it asks first: declined, nothing is deleted
  confirmDelete = false;
  await page.click(`${card} button.delete`);
  await page.waitForTimeout(300);
  assert.equal(await page.locator(card).count(), 1);
  confirmDelete = true;
  await page.click(`${card} button.delete`);
  await page.waitForSelector(card, { state: 'detached' });
  await page.waitForSelector(item, { state: 'detached' });
  await page.waitForTimeout(500); // the subscriptions' NOT_FOUND would have arrived by now
  assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error').innerText());
});

test(
  'a queued job says what it waits for; the gallery follows it live until it is drawn; delete',
  { skip },
  async () => {
    await page.fill('#caption', 'a waiting flower');
    await page.click('#generate');
    const card = '.job:has-text("a waiting flower")';
    const item = '.gallery-item:has-text("a waiting flower")';
    // no worker serves the model yet
    await page.waitForSelector(`${card}[data-status="QUEUED"] .status:has-text("waiting for a worker")`);
    await page.waitForSelector(`${item}[data-status="QUEUED"] .status:has-text("waiting for a worker")`);
    await shot('2b-queued-place');
    worker = await startInProcessWorker(api, config, 'tiny');
    await page.waitForSelector(`${item}[data-status="SUCCEEDED"] img`);
    // deleted from its card: gone from the jobs and the gallery
    await page.click(`${card} button.delete`);
    await page.waitForSelector(card, { state: 'detached' });
    await page.waitForSelector(item, { state: 'detached' });
  },
);

test('generate: images arrive live with caption, seed and progress', { skip }, async () => {
  worker ??= await startInProcessWorker(api, config, 'tiny');
  await page.fill('#caption', 'a red flower with five petals');
  await page.fill('#count', '3');
  await page.fill('#seed', '42');
  await page.dblclick('#generate'); // the second click meets a disabled button: one generation
  const card = '.job:has-text("a red flower with five petals")';
  await page.waitForSelector(`${card}[data-status="SUCCEEDED"]`);
  assert.equal(await page.locator(card).count(), 1);
  assert.equal(await page.locator(`${card} figure.image`).count(), 3);
  // each image downloads as a file named by its seed
  const link = page.locator(`${card} figure.image a[download]`).first();
  assert.equal(await link.getAttribute('download'), 'ganvas-42.png');
  assert.equal(
    await link.getAttribute('href'),
    await page.locator(`${card} figure.image img`).first().getAttribute('src'),
  );
  assert.match(await page.locator(`${card} figure.image`).first().innerText(), /seed 42/);
  // separate pictures, not frames: no animation offered (interpolations have one)
  assert.equal(await page.locator(`${card} a.animation`).isHidden(), true);
  assert.equal(await page.locator(`${card} progress`).evaluate((p) => (p as HTMLProgressElement).value), 1);
  const loaded = await page
    .locator(`${card} figure.image img`)
    .first()
    .evaluate((img) => (img as HTMLImageElement).naturalWidth);
  assert.equal(loaded, 32);
  // a screen reader hears that it ended, once (the cards' countdowns are not a live region)
  assert.equal(await page.locator('#announce').innerText(), 'succeeded: text to image: a red flower with five petals');
  assert.equal(await page.locator('#jobs[aria-live]').count(), 0);
  await shot('3-generated');
  // "more like this": the same caption, new seeds
  await page.locator(`${card} button:has-text("more like this")`).first().click();
  await page.waitForFunction(() => document.querySelectorAll('.job').length >= 3);
  await page.waitForSelector('.job:first-child[data-status="SUCCEEDED"]');
  // "vary style": frames from seed 42 to another; only the two ends have a seed of their own to copy or vary
  // (seed 42 itself: "more like this" drew new random seeds, and one may begin with 42)
  await page
    .locator('figure.image')
    .filter({ hasText: /seed 42(?!\d)/ })
    .locator('button:has-text("vary style")')
    .first()
    .click();
  const varied = '.job:first-child:has-text("style variation")';
  await page.waitForSelector(`${varied}[data-status="SUCCEEDED"]`);
  const frames = page.locator(`${varied} figure.image`);
  assert.equal(await frames.count(), 8);
  const end = /seed (\d+) · mix 1\.00/.exec(await frames.last().locator('figcaption').innerText())![1];
  assert.match(await frames.first().locator('figcaption').innerText(), /seed 42 · mix 0\.00/);
  assert.match(
    await frames.nth(3).locator('figcaption').innerText(),
    new RegExp(`between seeds 42 and ${end} · mix 0\\.43`),
  );
  assert.deepEqual(
    await frames.evaluateAll((fs) => fs.map((f) => f.querySelectorAll('button').length)),
    [4, 2, 2, 2, 2, 2, 2, 4],
    'copy seed, more like this, vary style, use style at the ends; more like this, use style between',
  );
  // the cards' alike buttons each name their image (its caption below it)
  const described = await frames
    .nth(3)
    .locator('.actions > *')
    .evaluateAll((as) => as.map((a) => document.getElementById(a.getAttribute('aria-describedby')!)?.tagName));
  assert.deepEqual([...new Set(described)], ['FIGCAPTION']);
});

test(
  'style transfer: pick an image, draw new captions in its style; deleting the source clears the pick',
  { skip },
  async () => {
    assert.equal(await page.locator('#key-form').isVisible(), false, 'no key asked for in open mode');
    const source = await page
      .locator('figure.image')
      .first()
      .evaluate((f) => f.closest<HTMLElement>('.job')!.dataset.id);
    await page.locator('figure.image button:has-text("use style")').first().click();
    assert.equal(await page.locator('#style-source').isVisible(), true);
    await page.fill('#style-captions', 'a white flower\na blue flower');
    await page.click('#transfer');
    const card = '.job:has-text("style transfer")';
    await page.waitForSelector(`${card}[data-status="SUCCEEDED"]`);
    assert.equal(await page.locator(`${card} figure.image`).count(), 2);
    // its images come from the source's style, not a seed: nothing to copy or vary
    assert.equal(await page.locator(`${card} button:has-text("seed"), ${card} button:has-text("vary")`).count(), 0);
    assert.match(await page.locator(`${card} figure.image .meta`).first().innerText(), /in the style of its image/);
    await shot('4-style-transfer');
    await page.click(`.job[data-id="${source}"] button.delete`);
    await page.waitForSelector(`.job[data-id="${source}"]`, { state: 'detached' });
    assert.equal(await page.locator('#style-source').isVisible(), false);
    assert.match(await page.locator('#style-source-label').innerText(), /Pick an image/);
  },
);

test("style transfer from a picture of the user's, cropped and scaled down in the browser", { skip }, async () => {
  const picture = join(ARTIFACTS, 'upload.png');
  // thin: scaled whole to 256 wide it would be 5 pixels high, under the API's 8
  await writeFile(picture, encodePng(new Uint8Array(1000 * 20 * 3).fill(120), 1000, 20));
  await page.setInputFiles('#style-upload', picture);
  await page.waitForSelector('#style-source[src^="data:image/png"]');
  await page.waitForFunction(() => (document.getElementById('style-source') as HTMLImageElement).naturalWidth > 0);
  assert.deepEqual(
    await page.$eval('#style-source', (img) => [
      (img as HTMLImageElement).naturalWidth,
      (img as HTMLImageElement).naturalHeight,
    ]),
    [20, 20],
  );
  assert.match(await page.locator('#style-source-label').innerText(), /your picture upload\.png/);
  await page.fill('#style-captions', 'a green flower');
  await page.click('#transfer');
  await page.waitForSelector('.job:has-text("style transfer: a green flower")[data-status="SUCCEEDED"]');
});

test('interpolation: a strip, a slider that scrubs through it, an animated download', { skip }, async () => {
  await page.fill('#interp-from', 'a red flower');
  await page.fill('#interp-to', 'a blue flower');
  await page.fill('#interp-steps', '5');
  await page.click('#interpolate');
  await page.waitForSelector('.job:has-text("caption interpolation")[data-status="SUCCEEDED"]');
  await page.waitForFunction(() => document.querySelectorAll('#interp-strip img').length === 5);
  const frame = () => page.locator('#interp-frame').getAttribute('src');
  const first = await frame();
  await page.locator('#interp-slider').fill('4');
  const last = await frame();
  assert.notEqual(first, last);
  const href = await page.locator('#interp-download').getAttribute('href');
  const res = await page.request.get(new URL(href!, page.url()).toString());
  assert.equal(res.headers()['content-type'], 'image/png');
  assert.ok((await res.body()).includes('acTL'));
  // its card offers the same file
  const card = '.job:has-text("caption interpolation")';
  assert.equal(await page.locator(`${card} a.animation`).getAttribute('href'), href);
  assert.equal(await page.locator(`${card} a.animation`).isVisible(), true);
  // its frames share a seed, not a file name
  const names = await page
    .locator(`${card} figure.image a[download]`)
    .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).download));
  assert.equal(new Set(names).size, 5, names.join(' '));
  await shot('5-interpolation');
  // a second one starts at its first frame; the first, opened from the gallery, is back on the slider
  await page.fill('#interp-steps', '3');
  await page.click('#interpolate');
  await page.waitForSelector('.job:first-child:has-text("caption interpolation")[data-status="SUCCEEDED"]');
  await page.waitForFunction(() => document.querySelectorAll('#interp-strip img').length === 3);
  assert.equal(await page.locator('#interp-slider').inputValue(), '0');
  assert.equal(await frame(), await page.locator('#interp-strip img').first().getAttribute('src'));
  await page.locator('.gallery-item:has-text("caption interpolation")').last().click();
  await page.waitForFunction(() => document.querySelectorAll('#interp-strip img').length === 5);
  assert.equal(await frame(), first);
});

test('gallery: pages with "load more", a new job joins the top and keeps them, filters by kind', { skip }, async () => {
  for (let i = 0; i < 3; i++) {
    await page.fill('#caption', `gallery flower ${i}`);
    await page.click('#generate');
    await page.waitForSelector(`.job:has-text("gallery flower ${i}")`);
  }
  const jobs = await page.locator('.job').count();
  const reads: string[] = [];
  const onRequest = (r: Request) => void (r.method() === 'POST' && reads.push(r.postData() ?? ''));
  page.on('request', onRequest);
  await page.reload();
  await page.waitForSelector('.gallery-item');
  // the jobs list is back after the reload, newest first, with its images, read in one request
  await page.waitForSelector('.job:first-child:has-text("gallery flower 2")[data-status="SUCCEEDED"] figure.image img');
  await page.waitForFunction((n) => document.querySelectorAll('.job').length === n, Math.min(jobs, 30));
  page.off('request', onRequest);
  assert.ok(jobs > 3);
  assert.equal(reads.filter((body) => body.includes('generations(ids:')).length, 1);
  assert.equal(reads.filter((body) => body.includes('generation(id:')).length, 0);
  const before = await page.locator('.gallery-item').count();
  assert.equal(before, 6);
  await page.click('#gallery-more');
  await page.waitForFunction((n) => document.querySelectorAll('.gallery-item').length > n, before);
  // a new job joins the top; the pages loaded stay (the gallery went back to its first page)
  const loaded = await page.locator('.gallery-item').count();
  await page.fill('#caption', 'a flower asked while reading page two');
  await page.click('#generate');
  await page.waitForFunction((n) => document.querySelectorAll('.gallery-item').length === n + 1, loaded);
  assert.match((await page.locator('.gallery-item').first().textContent())!, /asked while reading page two/);
  await page.selectOption('#filter-kind', 'STYLE_TRANSFER');
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.gallery-item')].every((li) => li.textContent!.includes('style transfer')),
  );
  assert.equal(await page.locator('.gallery-item').count(), 2, 'from a generated image and from a picture');
  assert.equal(await page.locator('.gallery-item time[datetime]').count(), 2, 'each says when it was asked');
  await shot('6-gallery');
  // each item a list item holding a button (not a list item made a button: the list would lose its items)
  assert.deepEqual(
    await page.$$eval('#gallery > li', (lis) => [
      ...new Set(lis.map((li) => `${li.role ?? ''}:${li.children.length}:${li.firstElementChild!.tagName}`)),
    ]),
    [':1:BUTTON'],
  );
  // from the keyboard too: Enter on an item opens its card, focused
  await page.focus('.gallery-item button');
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    () => document.activeElement?.classList.contains('job') && document.activeElement.textContent!.includes('style'),
  );
});

test('an API error is shown in words', { skip }, async () => {
  await page.fill('#caption', '   ');
  await page.click('#generate');
  await page.waitForSelector('#error:not([hidden])');
  // the API's words; its code on the box, for whoever reports it, not in the words
  assert.equal(await page.locator('#error-text').innerText(), 'caption is empty');
  assert.equal(await page.locator('#error').getAttribute('data-code'), 'BAD_USER_INPUT');
  // the caption is marked (the API named it in extensions.field), and focused, until it is changed
  assert.equal(await page.locator('#caption').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'caption');
  await page.type('#caption', 'a');
  assert.equal(await page.locator('#caption').getAttribute('aria-invalid'), null);
  await page.fill('#caption', '   ');
  // a form the browser refuses to send makes that error stale: it goes
  await page.fill('#interp-from', 'a red flower');
  await page.fill('#interp-to', 'a blue flower');
  await page.fill('#interp-steps', '1');
  await page.click('#interpolate');
  await page.waitForSelector('#error', { state: 'hidden' });
  await page.fill('#interp-steps', '8');
  // style captions that are all blank are said in the form's words (the API's would name its field)
  await page.fill('#style-captions', '  \n   ');
  await page.click('#transfer');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(
    await page.locator('#error-text').innerText(),
    /^(Write at least one caption, one a line\.|Pick an image first)/,
  );
  await page.click('#error-close');
  assert.equal(await page.locator('#error').isHidden(), true);
  // on a phone the interpolation form is far down the page: its error is still in sight
  await page.setViewportSize({ width: 390, height: 800 });
  await page.fill('#interp-from', '   ');
  await page.fill('#interp-to', 'a blue flower');
  await page.locator('#interpolate').scrollIntoViewIfNeeded();
  await page.click('#interpolate');
  await page.waitForSelector('#error:not([hidden])');
  const box = (await page.locator('#error').boundingBox())!;
  assert.ok(box.y >= 0 && box.y + box.height <= 800, `the error at y ${box.y}, out of sight`);
  // nothing wider than the phone: no sideways scrolling (the widest elements named where something is)
  const wide = await page.evaluate(() =>
    [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
      .slice(0, 5)
      .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`),
  );
  assert.deepEqual(wide, []);
  await shot('7-error-phone-width');
});

test('the API away and back: its error goes by itself, and pictures that failed meanwhile load', { skip }, async () => {
  worker ??= await startInProcessWorker(api, config, 'tiny');
  await page.setViewportSize({ width: 1100, height: 900 });
  // the API unreachable from the page: GraphQL refused, pictures too (its /healthz, asked for its return, is not)
  await page.route('**/graphql', (r) => (r.request().method() === 'POST' ? r.abort() : r.continue()));
  await page.fill('#caption', 'a flower while the API is away');
  await page.click('#generate');
  await page.waitForSelector('#error[data-code="NETWORK"]:not([hidden])');
  await page.unroute('**/graphql');
  await page.waitForSelector('#error', { state: 'hidden', timeout: 15_000 });
  await page.route('**/images/**', (r) => r.abort());
  await page.click('#generate');
  const img = page.locator('.job:has-text("a flower while the API is away") figure.image img').first();
  await img.and(page.locator('[data-broken]')).waitFor({ timeout: 30_000 });
  await page.unroute('**/images/**');
  await page.waitForFunction(
    () => {
      const shown = document.querySelector<HTMLImageElement>(
        '.job[data-status="SUCCEEDED"] figure.image img[alt="a flower while the API is away"]',
      );
      return shown !== null && shown.naturalWidth > 0 && !('broken' in shown.dataset);
    },
    undefined,
    { timeout: 15_000 },
  );
});

test(
  'a cancel that arrives after its job ended (a click a moment late) shows how it ended, not an error',
  { skip },
  async () => {
    const card = page.locator('.job[data-status="SUCCEEDED"]').first();
    const id = (await card.getAttribute('data-id'))!;
    // the click that left while the job still ran: its button is hidden once it ends, so clicked from the page
    await page.evaluate(
      (id) => document.querySelector<HTMLElement>(`.job[data-id="${id}"] button.cancel`)!.click(),
      id,
    );
    await page.waitForSelector('#announce:has-text("It had already finished.")');
    assert.equal(await page.locator('#error').isHidden(), true, await page.locator('#error-text').innerText());
    assert.equal(await page.locator(`.job[data-id="${id}"]`).getAttribute('data-status'), 'SUCCEEDED');
  },
);

/** Runs GraphiQL's default query (a generateImages mutation) once the editor holds it, and waits for its answer. */
async function runDefaultQuery(graphiql: Page): Promise<void> {
  await graphiql.waitForSelector('.graphiql-query-editor :text("generateImages")', { timeout: 60_000 });
  await graphiql.click('.graphiql-execute-button');
  await graphiql.waitForFunction(
    () => document.querySelector('.result-window')?.textContent?.includes('"status": "QUEUED"'),
    undefined,
    { timeout: 60_000 },
  );
}

test(
  'GraphiQL at /graphql works offline: every file from ganvas, a query runs, no key field in open mode',
  { skip },
  async () => {
    const graphiql = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const elsewhere: string[] = [];
    graphiql.on(
      'request',
      (r) => void (new URL(r.url()).host !== `127.0.0.1:${api.api!.port}` && elsewhere.push(r.url())),
    );
    await graphiql.goto(`http://127.0.0.1:${api.api!.port}/graphql`);
    await graphiql.waitForSelector('.graphiql-container');
    assert.equal(await graphiql.locator('input[type="password"]').count(), 0, 'open mode needs no key');
    await runDefaultQuery(graphiql);
    assert.deepEqual(elsewhere, []);
    await graphiql.screenshot({ path: join(ARTIFACTS, '8-graphiql.png') });
    await graphiql.close();
  },
);

test('GraphiQL where keys are required: a key field, and queries run with the key typed there', { skip }, async () => {
  const keyed = await startServices(
    testConfig(config.modelDirs[0]),
    { api: true, worker: false, migrate: true, auth: 'keys' },
    silentLogger(),
  );
  const { key } = await createApiKey(keyed.db.prisma, 'graphiql');
  const graphiql = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  try {
    await graphiql.goto(`http://127.0.0.1:${keyed.api!.port}/graphql`);
    await graphiql.waitForSelector('.graphiql-container');
    await graphiql.fill('input[type="password"]', key);
    await runDefaultQuery(graphiql);
    await graphiql.screenshot({ path: join(ARTIFACTS, '9-graphiql-key.png') });
  } finally {
    await graphiql.close();
    await keyed.stop();
  }
});
