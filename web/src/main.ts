/**
 * The ganvas studio: text to image with live results, style transfer, caption and noise interpolation,
 * and a gallery of past generations. Every action is one GraphQL mutation followed live by subscription.
 */
import type * as Schema from '../../examples/schema-types.ts';
import { ApiError, type Generation, GENERATION_FIELDS, type Image, apiKey, follow, gql } from './api.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELED'];
const randomSeed = () => Math.floor(Math.random() * 2 ** 31);
const numberOrNull = (v: string) => (v.trim() === '' ? null : Number(v));

/**
 * Shows an error above everything (the box stays in sight while the page scrolls: style.css) until dismissed, in
 * words; its code is on the box (data-code, and its tooltip) for whoever reports it.
 */
function showError(e: unknown): void {
  const box = $('error');
  $('error-text').textContent = e instanceof ApiError ? e.message : `Something went wrong: ${String(e)}`;
  box.dataset.code = e instanceof ApiError ? e.code : 'ERROR';
  box.title = `error code ${box.dataset.code}`;
  box.hidden = false;
  if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') $('key-form').hidden = false;
  if (e instanceof ApiError && e.code === 'NETWORK') waitForApi();
}
function clearError(): void {
  $('error').hidden = true;
  for (const input of document.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** The input of each form that a request's field comes from (BAD_USER_INPUT's extensions.field names the field). */
const INPUTS: Record<string, Record<string, string>> = {
  'generate-form': { caption: 'caption', count: 'count', seed: 'seed', model: 'model-picker' },
  'style-form': { captions: 'style-captions', image: 'style-upload', model: 'model-picker' },
  'interp-form': {
    from: 'interp-from',
    to: 'interp-to',
    steps: 'interp-steps',
    seed: 'interp-seed',
    model: 'model-picker',
  },
};

/** Marks the input an error of `form`'s request is about, and moves there, until it is changed. */
function markInput(form: string | undefined, e: unknown): void {
  const id = e instanceof ApiError && e.field && form ? INPUTS[form]?.[e.field] : undefined;
  if (!id) return;
  const input = $(id);
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-errormessage', 'error-text');
  input.focus();
  for (const event of ['input', 'change'])
    input.addEventListener(event, () => input.removeAttribute('aria-invalid'), { once: true });
}
$('error-close').onclick = clearError;
// a form the browser refuses to send (a field out of its range) makes the last action's error stale
for (const form of document.querySelectorAll('form')) form.addEventListener('invalid', clearError, true);

/**
 * While the API cannot be reached (a restart, a dropped network): asks every few seconds whether it is back, then
 * clears the error that said so and fetches again what failed meanwhile (recover, below).
 */
let waitingForApi = false;
function waitForApi(): void {
  if (waitingForApi) return;
  waitingForApi = true;
  const ask = async () => {
    // any answer but a gateway's 5xx: the API is back (a proxy may keep /healthz to itself, 404)
    const back = await fetch('/healthz').then(
      (r) => r.status < 500,
      () => false,
    );
    if (!back) return void setTimeout(ask, 3000);
    waitingForApi = false;
    if ($('error').dataset.code === 'NETWORK') clearError();
    recover();
  };
  setTimeout(ask, 3000);
}

/** Tries of a picture that did not load (its server away, a network dropped), after which it is left as it is. */
const PICTURE_TRIES = 3;
// every picture of the page, made now or later: one that fails while the API is away loads again once it is back
// (errors and loads do not bubble: they are caught on their way down)
document.addEventListener(
  'error',
  (e) => {
    if (!(e.target instanceof HTMLImageElement)) return;
    e.target.dataset.broken = String(Number(e.target.dataset.broken ?? 0) + 1);
    waitForApi();
  },
  true,
);
document.addEventListener('load', (e) => e.target instanceof HTMLImageElement && delete e.target.dataset.broken, true);
function reloadPictures(): void {
  for (const img of document.querySelectorAll<HTMLImageElement>('img[data-broken]'))
    if (Number(img.dataset.broken) < PICTURE_TRIES) img.setAttribute('src', img.getAttribute('src')!); // loads again
}

/** Tells a screen reader what changed, once: a job started or ended (the cards' countdowns are not read out). */
function announce(text: string): void {
  $('announce').textContent = text;
}

/**
 * Runs an action, showing its error to the user instead of swallowing it. `busy` (the button that started it) is
 * disabled until it ends: a second click would send it again.
 */
function act(f: () => Promise<unknown>, busy?: HTMLButtonElement): void {
  clearError();
  if (busy) busy.disabled = true;
  f()
    .catch((e: unknown) => {
      showError(e);
      markInput(busy?.form?.id, e);
    })
    .finally(() => {
      if (busy) busy.disabled = false;
    });
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// ---------------------------------------------------------------- jobs

const KIND_LABEL: Record<string, string> = {
  TEXT_TO_IMAGE: 'text to image',
  CAPTION_INTERPOLATION: 'caption interpolation',
  NOISE_INTERPOLATION: 'style variation',
  STYLE_TRANSFER: 'style transfer',
};

const captionsOf = (g: Generation) => g.captions.join(g.kind === 'CAPTION_INTERPOLATION' ? ' → ' : ' · ');
/** "text to image: a red flower": a generation's card title and gallery line. */
const titleOf = (g: Generation) => `${KIND_LABEL[g.kind] ?? g.kind}: ${captionsOf(g)}`;

/** "in about 12 s" / "in about 3 min" / "any moment now" from an ISO time, or '' without one. */
function inAbout(iso: string | null | undefined): string {
  if (!iso) return '';
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (s < 1) return 'any moment now'; // the estimate has passed and no newer one came yet
  return s < 90 ? `in about ${s} s` : `in about ${Math.round(s / 60)} min`;
}

/** A generation's status in words: its place in the queue and expected times while it waits or runs. */
function statusText(g: Generation): string {
  if (g.error) return `${g.status}: ${g.error}`;
  if (g.status === 'QUEUED' && g.waitingFor === 'MODEL') return `QUEUED · waiting for a worker for “${g.model}”`;
  if (g.status === 'QUEUED' && g.queuePosition != null) {
    const place = g.queuePosition === 0 ? 'next in line' : `${g.queuePosition} ahead`;
    const start = inAbout(g.estimatedStartAt);
    return `QUEUED · ${place}${start ? ` · starts ${start}` : ''}`;
  }
  if (g.status === 'RUNNING' && g.estimatedFinishAt) return `RUNNING · done ${inAbout(g.estimatedFinishAt)}`;
  return g.status;
}

/**
 * The seed an image's noise is drawn from, to copy or vary: none for a style transfer (its noise comes from its
 * source image) nor for a noise interpolation's frames between its ends (their noise is a mix of two seeds').
 */
function seedOf(g: Generation, img: Image): number | null {
  if (g.kind === 'STYLE_TRANSFER') return null;
  if (g.kind !== 'NOISE_INTERPOLATION' || img.mix === 0) return img.seed;
  return img.mix === 1 ? g.endSeed : null;
}

function imageCard(g: Generation, img: Image): HTMLElement {
  const seed = seedOf(g, img);
  const copy = el('button', { textContent: 'copy seed', className: 'small' });
  copy.onclick = () =>
    act(async () => {
      // no clipboard outside a secure page (http on another host), or the browser refused: say so, with the seed
      const copied = await (navigator.clipboard?.writeText(String(seed)).then(
        () => true,
        () => false,
      ) ?? false);
      copy.textContent = copied ? `seed ${seed} copied` : `seed ${seed} (copy it by hand)`;
      announce(copy.textContent);
    });
  const more = el('button', { textContent: 'more like this', className: 'small' });
  // from the image's own model, whatever the picker shows now
  more.onclick = () =>
    act(
      () =>
        start('generateImages', 'GenerateImagesInput', { caption: img.caption, count: 4, seed: randomSeed() }, g.model),
      more,
    );
  const vary = el('button', { textContent: 'vary style', className: 'small' });
  vary.onclick = () =>
    act(
      () =>
        start(
          'interpolateNoise',
          'InterpolateNoiseInput',
          { caption: img.caption, fromSeed: seed, toSeed: randomSeed(), steps: 8 },
          g.model,
        ),
      vary,
    );
  const useStyle = el('button', { textContent: 'use style', className: 'small' });
  useStyle.onclick = () => pickStyle(img, g);
  const mix = img.mix !== null ? ` · mix ${img.mix.toFixed(2)}` : '';
  const meta = el(
    'figcaption',
    { className: 'meta', id: `meta-${img.id}` },
    img.caption,
    el('br'),
    seed !== null
      ? `seed ${seed}${mix}`
      : g.kind === 'NOISE_INTERPOLATION'
        ? `between seeds ${g.seed} and ${g.endSeed}${mix}`
        : 'in the style of its image',
  );
  // an interpolation's frames share a seed: each its own file
  const file = `ganvas-${img.seed}${img.mix !== null ? `-${img.index}` : ''}.png`;
  const figure = el(
    'figure',
    { className: 'image' },
    el('img', { src: img.url, alt: img.caption, width: 128, height: 128 }),
    meta,
    el(
      'div',
      { className: 'actions' },
      el('a', { href: img.url, download: file, textContent: 'download', className: 'small' }),
      ...(seed !== null ? [copy, more, vary] : [more]),
      useStyle,
    ),
  );
  // each card's buttons are alike: a screen reader says which image they act on
  for (const action of figure.querySelectorAll('.actions > *')) action.setAttribute('aria-describedby', meta.id);
  figure.dataset.index = String(img.index);
  return figure;
}

/** The live updates of the job cards, one per generation (a card and a gallery click share it). */
const cardFollows = new Map<string, () => void>();
function followCard(id: string): void {
  if (cardFollows.has(id)) return;
  cardFollows.set(
    id,
    follow(id, renderJob, (e) => {
      cardFollows.delete(id);
      // its times no longer count down: nothing will tell the card when they pass
      const card = document.querySelector<HTMLElement>(`.job[data-id="${id}"]`);
      if (card) shownIn.delete(card);
      if (card && e.code === 'NOT_FOUND') {
        // deleted elsewhere (another tab, the command line): nothing left to cancel
        card.dataset.status = 'DELETED';
        card.querySelector('.status')!.textContent = 'deleted';
        (card.querySelector('.cancel') as HTMLButtonElement).hidden = true;
        return; // the card says it: no error
      }
      showError(e);
    }),
  );
}

/** The state each card and gallery item last showed, so its waiting times count down between updates. */
const shownIn = new WeakMap<HTMLElement, Generation>();
setInterval(() => {
  for (const place of document.querySelectorAll<HTMLElement>('.job[data-id], .gallery-item[data-id]')) {
    const g = shownIn.get(place);
    if (g && !FINAL.includes(g.status)) place.querySelector('.status')!.textContent = statusText(g);
  }
}, 5000);

/**
 * The jobs list's generations, newest first, kept for this tab (sessionStorage): a reload shows their cards again
 * (below, at start), where it used to empty the list.
 */
const JOBS_KEY = 'ganvas.jobs';
const MAX_KEPT_JOBS = 30;
const keptJobs = (): string[] => JSON.parse(sessionStorage.getItem(JOBS_KEY) ?? '[]') as string[];
function keepJobs(ids: string[]): void {
  sessionStorage.setItem(JOBS_KEY, JSON.stringify(ids.slice(0, MAX_KEPT_JOBS)));
}

/**
 * Creates or updates the card of a generation in the jobs list. A card made for one just asked for is announced; not
 * one that `existed` before (a reload's, or one opened from the gallery).
 */
function renderJob(g: Generation, existed = false): void {
  if (FINAL.includes(g.status)) cardFollows.delete(g.id); // its subscription has completed
  let card = document.querySelector<HTMLElement>(`.job[data-id="${g.id}"]`);
  const title = titleOf(g);
  if (card && card.dataset.status !== g.status && FINAL.includes(g.status))
    announce(`${g.status.toLowerCase()}: ${title}${g.error ? ` (${g.error})` : ''}`);
  if (!card) {
    if (!existed) announce(`Started ${title}`);
    card = el('article', { className: 'job', tabIndex: -1 });
    card.dataset.id = g.id;
    const cancel = el('button', { textContent: 'Cancel', className: 'cancel' });
    cancel.onclick = () =>
      act(async () => {
        try {
          renderJob(
            (
              await gql<{ cancelGeneration: Generation }>(
                `mutation($id: ID!) { cancelGeneration(id: $id) { ${GENERATION_FIELDS} } }`,
                { id: g.id },
              )
            ).cancelGeneration,
          );
        } catch (err) {
          // it finished between the click and the cancel (a job takes about a second): the card says how it ended
          if (!(err instanceof ApiError && err.code === 'BAD_USER_INPUT')) throw err;
          const query = `query($id: ID!) { generation(id: $id) { ${GENERATION_FIELDS} } }`;
          renderJob((await gql<{ generation: Generation }>(query, { id: g.id })).generation);
          announce('It had already finished.');
        }
      }, cancel);
    const remove = el('button', { textContent: 'Delete', className: 'delete' });
    remove.onclick = () =>
      act(async () => {
        // one deleted elsewhere is gone already: only its card and what shows it are left
        if (card!.dataset.status !== 'DELETED') {
          if (!confirm('Delete this generation and its images? Their links stop working.')) return;
          // its live updates end first: the deletion would reach them as NOT_FOUND (and resume if it fails)
          const following = cardFollows.has(g.id);
          cardFollows.get(g.id)?.();
          cardFollows.delete(g.id);
          try {
            await gql('mutation($id: ID!) { deleteGeneration(id: $id) }', { id: g.id });
          } catch (err) {
            if (following) followCard(g.id);
            throw err;
          }
        }
        card!.remove();
        keepJobs(keptJobs().filter((id) => id !== g.id));
        if (interpId === g.id) {
          interpId = null;
          $('interp-view').hidden = true;
        }
        if (styleImage && 'of' in styleImage && styleImage.of.id === g.id) {
          styleImage = null;
          $<HTMLImageElement>('style-source').hidden = true;
          $('style-source-label').textContent = STYLE_LABEL;
        }
        removeFromGallery(g.id);
      }, remove);
    card.append(
      el('header', {}, el('strong', { className: 'title' }), el('span', { className: 'status' }), cancel, remove),
      el('progress', { max: 1, value: 0, ariaLabel: `progress of ${captionsOf(g)}` }),
      el('div', { className: 'images' }),
      el('a', { className: 'animation', textContent: 'Download as animated PNG', hidden: true }),
    );
    $('jobs').prepend(card);
    keepJobs([g.id, ...keptJobs().filter((id) => id !== g.id)]);
  }
  card.querySelector('.title')!.textContent = title;
  card.querySelector('.status')!.textContent = statusText(g);
  card.dataset.status = g.status;
  shownIn.set(card, g);
  (card.querySelector('progress') as HTMLProgressElement).value = g.progress;
  (card.querySelector('.cancel') as HTMLButtonElement).hidden = FINAL.includes(g.status);
  const images = card.querySelector('.images')!;
  for (const img of g.images)
    if (!images.querySelector(`[data-index="${img.index}"]`)) images.append(imageCard(g, img));
  // interpolations (captions, or the noise of "vary style"): their frames as one animated PNG
  const animation = card.querySelector<HTMLAnchorElement>('a.animation')!;
  const frames = g.kind === 'CAPTION_INTERPOLATION' || g.kind === 'NOISE_INTERPOLATION';
  animation.hidden = !frames || g.status !== 'SUCCEEDED' || !g.animationUrl;
  animation.href = g.animationUrl ?? '';
  animation.download = `ganvas-${g.id}.png`;
  if (g.kind === 'CAPTION_INTERPOLATION' && g.id === interpId) showInterpolation(g);
}

/**
 * Back from a hidden tab or a lost network: the cards whose live updates gave up follow again (a subscription
 * starts with the generation's current state).
 */
function resumeCards(): void {
  for (const card of document.querySelectorAll<HTMLElement>('.job[data-id]'))
    if (!FINAL.includes(card.dataset.status!) && card.dataset.status !== 'DELETED') followCard(card.dataset.id!);
}
document.addEventListener('visibilitychange', () => !document.hidden && resumeCards());
window.addEventListener('online', recover);

/** The API answers again: live updates resume, pictures that failed load, a gallery that failed to load loads. */
function recover(): void {
  resumeCards();
  reloadPictures();
  if (galleryStale) act(() => loadGallery(true));
}

/** Sends a mutation that creates a generation (with `model`, by default the picked one) and follows it live. */
async function start(
  mutation: string,
  inputType: string,
  input: Record<string, unknown>,
  model: string | null = $<HTMLSelectElement>('model-picker').value || null,
): Promise<Generation> {
  const data = await gql<Record<string, Generation>>(
    `mutation($input: ${inputType}!) { ${mutation}(input: $input) { ${GENERATION_FIELDS} } }`,
    { input: { ...input, model } },
  );
  const g = data[mutation];
  renderJob(g);
  followCard(g.id);
  addToGallery(g);
  // its card in sight (on a phone the jobs are below every form); an interpolation shows in its own viewer
  if (mutation !== 'interpolateCaptions')
    document.querySelector(`.job[data-id="${g.id}"]`)!.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  return g;
}

// ---------------------------------------------------------------- text to image

/**
 * Under a caption field near its limit (maxlength): how many characters it holds, and that a paste was cut to fit
 * (the browser cuts it without a word).
 */
function countCharacters(field: HTMLTextAreaElement, note: HTMLElement): void {
  let cut = false;
  const show = () => {
    const n = field.value.length;
    note.textContent =
      n >= field.maxLength * 0.8
        ? `${n} of ${field.maxLength} characters${cut ? ' (the paste was cut to fit)' : ''}`
        : '';
  };
  field.addEventListener('paste', (e) => {
    const pasted = e.clipboardData?.getData('text') ?? '';
    const kept = field.value.length - ((field.selectionEnd ?? 0) - (field.selectionStart ?? 0));
    cut = kept + pasted.length > field.maxLength;
  });
  field.addEventListener('input', () => {
    show();
    cut = false;
  });
}
countCharacters($<HTMLTextAreaElement>('caption'), $('caption-count'));

$('generate-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(
    () =>
      start('generateImages', 'GenerateImagesInput', {
        caption: $<HTMLTextAreaElement>('caption').value,
        count: Number($<HTMLInputElement>('count').value),
        seed: numberOrNull($<HTMLInputElement>('seed').value),
      }),
    $<HTMLButtonElement>('generate'),
  );
});

// ---------------------------------------------------------------- style transfer

const STYLE_LABEL = $('style-source-label').textContent ?? '';
/** The API's limits of a style transfer's captions: how many, and characters (code points) each (LIMITS). */
const [MAX_CAPTIONS, MAX_CAPTION] = [16, 500];
/**
 * The image whose style is drawn: a generated one and its generation (its model draws the new captions), or a
 * picture of the user's, as a PNG data URL (the picked model draws them).
 */
let styleImage: { img: Image; of: Generation } | { upload: string } | null = null;
function showStyle(src: string, label: string): void {
  const preview = $<HTMLImageElement>('style-source');
  preview.src = src;
  preview.hidden = false;
  $('style-source-label').textContent = `${label}. New captions, one a line:`;
  $('style-panel').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}
function pickStyle(img: Image, of: Generation): void {
  styleImage = { img, of };
  $<HTMLInputElement>('style-upload').value = ''; // the file chosen before is no longer the style
  const seed = seedOf(of, img);
  showStyle(img.url, `Style of “${img.caption}”${seed !== null ? ` (seed ${seed})` : ''}`);
}
/**
 * The model reads a style image at its own size (64x64), from its largest centred square (the API crops so): a
 * photo is cropped to that square and scaled down here, to a small PNG (scaled whole, a thin picture's short side
 * would go under the API's 8 pixels).
 */
const UPLOAD_SIDE = 256;
$<HTMLInputElement>('style-upload').addEventListener('change', (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  act(async () => {
    const bitmap = await createImageBitmap(file).catch(() => {
      throw new ApiError(`${file.name} is not a picture this browser can read (PNG or JPEG).`, 'BAD_USER_INPUT');
    });
    const square = Math.min(bitmap.width, bitmap.height);
    const side = Math.min(square, UPLOAD_SIDE);
    const canvas = el('canvas', { width: side, height: side });
    canvas
      .getContext('2d')!
      .drawImage(bitmap, (bitmap.width - square) / 2, (bitmap.height - square) / 2, square, square, 0, 0, side, side);
    styleImage = { upload: canvas.toDataURL('image/png') };
    showStyle(styleImage.upload, `Style of your picture ${file.name}`);
  });
});
$('style-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(async () => {
    if (!styleImage)
      throw new ApiError('Pick an image first: press “use style” under any image, or choose a picture.', 'NO_IMAGE');
    const captions = $<HTMLTextAreaElement>('style-captions')
      .value.split('\n')
      .map((c) => c.trim())
      .filter(Boolean);
    // said here in the form's words (one a line), where the API's would name its fields
    if (captions.length === 0) throw new ApiError('Write at least one caption, one a line.', 'BAD_USER_INPUT');
    if (captions.length > MAX_CAPTIONS)
      throw new ApiError(`At most ${MAX_CAPTIONS} captions at a time: this has ${captions.length}.`, 'BAD_USER_INPUT');
    const long = captions.findIndex((c) => [...c].length > MAX_CAPTION);
    if (long >= 0)
      throw new ApiError(
        `Caption ${long + 1} is ${[...captions[long]].length} characters long: at most ${MAX_CAPTION}.`,
        'BAD_USER_INPUT',
      );
    if ('upload' in styleImage)
      await start('transferStyle', 'TransferStyleInput', { image: styleImage.upload, captions });
    else
      await start('transferStyle', 'TransferStyleInput', { imageId: styleImage.img.id, captions }, styleImage.of.model);
  }, $<HTMLButtonElement>('transfer'));
});

// ---------------------------------------------------------------- caption interpolation

/** The caption interpolation the viewer shows (the last one asked for, or opened from the gallery). */
let interpId: string | null = null;
/** Which one the viewer's slider was last set for: another starts at its first frame. */
let interpShown: string | null = null;
function showInterpolation(g: Generation): void {
  $('interp-view').hidden = false;
  const slider = $<HTMLInputElement>('interp-slider');
  if (interpShown !== g.id) slider.value = '0';
  interpShown = g.id;
  slider.max = String(Math.max(0, g.images.length - 1));
  const strip = $('interp-strip');
  strip.replaceChildren(
    ...g.images.map((img) => {
      const mix = `mix ${img.mix?.toFixed(2)}`;
      return el('img', { src: img.url, alt: mix, title: mix });
    }),
  );
  // until its first frame is drawn, no frame (not the previous interpolation's) and a word of what comes
  const waiting = $('interp-waiting');
  waiting.hidden = g.images.length > 0;
  waiting.textContent = FINAL.includes(g.status)
    ? `No frames: the interpolation ${g.status.toLowerCase()}.`
    : 'The frames appear here as they are drawn.';
  slider.hidden = g.images.length < 2;
  const frame = () => {
    const img = g.images[Number(slider.value)];
    const shown = $<HTMLImageElement>('interp-frame');
    shown.hidden = !img;
    if (img)
      Object.assign(shown, { src: img.url, alt: `frame ${img.index + 1} of ${g.images.length}: ${img.caption}` });
    slider.setAttribute('aria-valuetext', img ? `frame ${img.index + 1} of ${g.images.length}` : 'no frame');
  };
  slider.oninput = frame;
  frame();
  const download = $<HTMLAnchorElement>('interp-download');
  download.hidden = g.status !== 'SUCCEEDED' || !g.animationUrl;
  download.href = g.animationUrl ?? '';
  download.download = `ganvas-${g.id}.png`;
}
$('interp-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(async () => {
    const g = await start('interpolateCaptions', 'InterpolateCaptionsInput', {
      from: $<HTMLInputElement>('interp-from').value,
      to: $<HTMLInputElement>('interp-to').value,
      steps: Number($<HTMLInputElement>('interp-steps').value),
      seed: numberOrNull($<HTMLInputElement>('interp-seed').value),
    });
    interpId = g.id;
    showInterpolation(g);
  }, $<HTMLButtonElement>('interpolate'));
});

// ---------------------------------------------------------------- gallery

const PAGE = 6;
let galleryCursor: string | null = null;
/** The live updates of the gallery's unfinished items, stopped when the gallery is loaded again. */
let galleryFollows: (() => void)[] = [];

/** Shows a gallery item's state: status and first image. */
function renderGalleryItem(li: HTMLElement, g: Generation): void {
  shownIn.set(li, g);
  li.dataset.status = g.status;
  li.querySelector('.status')!.textContent = statusText(g);
  const thumb = li.querySelector('img');
  if (g.images[0] && !thumb)
    li.querySelector('button')!.prepend(el('img', { src: g.images[0].url, alt: '', width: 48, height: 48 }));
}

/** Counts the gallery's loads from the start: a load overtaken by a later reset shows nothing and follows nothing. */
let galleryLoads = 0;
/** The gallery's last load failed: it does not show what its filters say (recover loads it again). */
let galleryStale = false;

/**
 * One gallery item: its state, followed live while unfinished; a button in it (to pointers, keyboards and screen
 * readers alike) opens the generation's card.
 */
function galleryItem(g: Generation): HTMLElement {
  const created = new Date(g.createdAt);
  const button = el(
    'button',
    { type: 'button' },
    el('span', { className: 'status' }),
    el('span', { className: 'what' }, titleOf(g)),
    el('time', {
      dateTime: created.toISOString(),
      textContent: created.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }),
    }),
  );
  const li = el('li', { className: 'gallery-item' }, button);
  li.dataset.id = g.id;
  let latest = g;
  renderGalleryItem(li, g);
  // an unfinished one follows its generation live; its card, once opened, follows it on its own (once); one
  // deleted meanwhile (from its card) just stops
  if (!FINAL.includes(g.status))
    galleryFollows.push(
      follow(
        g.id,
        (u) => {
          latest = u;
          renderGalleryItem(li, u);
        },
        (e) => (e.code === 'NOT_FOUND' ? li.remove() : showError(e)),
      ),
    );
  const open = () => {
    if (latest.kind === 'CAPTION_INTERPOLATION') interpId = latest.id; // its frames on the viewer's slider too
    renderJob(latest, true);
    if (!FINAL.includes(latest.status)) followCard(latest.id);
    const card = document.querySelector<HTMLElement>(`.job[data-id="${latest.id}"]`)!;
    card.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    card.focus({ preventScroll: true });
  };
  button.onclick = open;
  return li;
}

/**
 * A generation just asked for, at the top of the gallery (where the filters let it in): the reader keeps the pages
 * loaded and their place, where reloading the gallery went back to its first page.
 */
function addToGallery(g: Generation): void {
  const status = $<HTMLSelectElement>('filter-status').value;
  const kind = $<HTMLSelectElement>('filter-kind').value;
  if ((status && status !== g.status) || (kind && kind !== g.kind)) return;
  if (!document.querySelector(`.gallery-item[data-id="${g.id}"]`)) $('gallery').prepend(galleryItem(g));
}

/** A deleted generation leaves the gallery; the rest stays as it was. */
function removeFromGallery(id: string): void {
  document.querySelector(`.gallery-item[data-id="${id}"]`)?.remove();
}

async function loadGallery(reset: boolean): Promise<void> {
  const load = reset ? ++galleryLoads : galleryLoads;
  const more = $<HTMLButtonElement>('gallery-more');
  more.disabled = true; // a second click (or one during a reset) would load the same page again
  if (reset) {
    galleryCursor = null;
    for (const stop of galleryFollows) stop();
    galleryFollows = [];
  }
  const status = $<HTMLSelectElement>('filter-status').value || null;
  const kind = $<HTMLSelectElement>('filter-kind').value || null;
  const data = await gql<{
    generations: {
      edges: { cursor: string; node: Generation }[];
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
    };
  }>(
    `query($first: Int, $after: String, $status: GenerationStatus, $kind: GenerationKind) {
      generations(first: $first, after: $after, status: $status, kind: $kind) { edges { cursor node { ${GENERATION_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
    { first: PAGE, after: galleryCursor, status, kind },
  )
    .catch((err: unknown) => {
      if (load === galleryLoads) galleryStale = true;
      throw err;
    })
    .finally(() => {
      if (load === galleryLoads) more.disabled = false;
    });
  if (load !== galleryLoads) return;
  galleryStale = false;
  $('gallery').ariaBusy = 'false'; // its empty state says "none yet" from now on, not "loading"
  const items = data.generations.edges.map(({ node: g }) => galleryItem(g));
  if (reset) $('gallery').replaceChildren(...items);
  else $('gallery').append(...items);
  galleryCursor = data.generations.pageInfo.endCursor;
  $('gallery-more').hidden = !data.generations.pageInfo.hasNextPage;
}
$('gallery-more').onclick = () => act(() => loadGallery(false));
$('filter-status').onchange = () => act(() => loadGallery(true));
$('filter-kind').onchange = () => act(() => loadGallery(true));

// ---------------------------------------------------------------- API key (servers not on localhost ask for one)

$<HTMLInputElement>('api-key').value = apiKey.get();
$('key-form').hidden = !apiKey.get();
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey.set($<HTMLInputElement>('api-key').value);
  location.reload();
});

// ---------------------------------------------------------------- start

type Model = Pick<
  Schema.ModelInfo,
  'name' | 'imageSize' | 'variant' | 'isDefault' | 'untrained' | 'workers' | 'summary' | 'captionCharacters'
>;

/**
 * What the picked model is: size, how much of a caption it reads, training, and whether a worker serves it now; its
 * model card's summary folds out below.
 */
function describeModel(m: Model | undefined): string {
  if (!m) return 'no model';
  const served = m.workers > 0 ? `${m.workers} worker${m.workers > 1 ? 's' : ''}` : 'no worker now: requests wait';
  const untrained = m.untrained ? ' — untrained (random weights)' : '';
  const reads = `reads the first ${m.captionCharacters} characters of a caption`;
  return `${m.variant}, ${m.imageSize}×${m.imageSize}, ${reads}, ${served}${untrained}`;
}

// the models and the gallery load apart: one failing leaves the other
act(async () => {
  const { models } = await gql<{ models: Model[] }>(
    '{ models { name imageSize variant isDefault untrained workers summary captionCharacters } }',
  ).catch((err: unknown) => {
    $('model').textContent = 'the models could not be loaded (the error is above): reload the page to try again';
    throw err;
  });
  const picker = $<HTMLSelectElement>('model-picker');
  picker.replaceChildren(
    ...models.map((m) => el('option', { value: m.name, textContent: m.name, selected: m.isDefault })),
  );
  const show = () => {
    const m = models.find((m) => m.name === picker.value);
    $('model').textContent = describeModel(m);
    $('model-about').hidden = !m?.summary;
    $('model-about').querySelector('p')!.textContent = m?.summary ?? '';
  };
  picker.onchange = show;
  show();
});
act(() => loadGallery(true));

/** The jobs list as it was before a reload: the kept generations read again in one page (deleted ones dropped). */
act(async () => {
  const kept = keptJobs();
  if (kept.length === 0) return;
  const d = await gql<{ generations: { edges: { node: Generation }[] } }>(
    `query($ids: [ID!], $first: Int) { generations(ids: $ids, first: $first) { edges { node { ${GENERATION_FIELDS} } } } }`,
    { ids: kept, first: kept.length },
  );
  const found = d.generations.edges.map((e) => e.node);
  // oldest first: each card goes on top
  for (const g of [...found].reverse()) {
    renderJob(g, true);
    if (!FINAL.includes(g.status)) followCard(g.id);
  }
  const here = new Set(found.map((g) => g.id));
  const gone = new Set(kept.filter((id) => !here.has(id)));
  keepJobs(keptJobs().filter((id) => !gone.has(id)));
});
