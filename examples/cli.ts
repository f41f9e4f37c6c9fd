/**
 * A command-line ganvas client built on client.ts: every operation of the API, one command each (USAGE below,
 * which `npm run example -- help` prints). An option the command does not take is an error, before anything is
 * sent. Creating commands follow the generation live and save its PNGs into --out.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ClientGeneration, GanvasClient } from './client.ts';
import type { GenerationKind, GenerationStatus, WebhookInput } from './schema-types.ts';

const USAGE = `ganvas example client: every operation of the API, one command each
  npm run example -- generate --caption "a red flower" [--count 4] [--seed 7] [--model NAME] [--out images/]
  npm run example -- interpolate --from "a red flower" --to "a blue flower" [--steps 8] [--seed 7] [--out images/]
  npm run example -- variations --caption "a pink flower" [--from-seed 1] [--to-seed 2] [--steps 8] [--out images/]
  npm run example -- style (--image-id ID | --image photo.png) --captions "a white flower|a blue flower"
  npm run example -- list [--status SUCCEEDED] [--kind TEXT_TO_IMAGE] [--before 2026-11-01]
  npm run example -- show --id ID | cancel --id ID | delete --id ID
  npm run example -- delete [--status FAILED] [--kind KIND] [--before 2026-11-01T00:00:00Z]
  npm run example -- usage [--from 2026-11-01] [--to 2026-12-01] | quota | models | webhook-secret
Options: --url (default http://localhost:4000), --webhook URL (creating commands); GANVAS_API_KEY for the key.
Dates are a day (2026-11-01, its start in UTC) or an instant with its zone (2026-11-01T12:00:00Z, or +01:00).
\`list\` with the filter of a \`delete\` lists what it would delete. Creating commands save their PNGs into --out.`;

const argv = process.argv.slice(2);
const command = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'generate';
function option(name: string): string | undefined;
function option(name: string, fallback: string): string;
function option(name: string, fallback?: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
}
const required = (name: string): string => {
  const v = option(name);
  if (v === undefined) throw new Error(`${command} needs --${name}`);
  return v;
};
const int = (name: string): number | null => {
  const v = option(name);
  if (v === undefined) return null;
  if (!/^-?\d+$/.test(v)) throw new Error(`--${name} must be a whole number, not "${v}"`);
  return Number(v);
};

/** An instant with its zone: a time without one would be read in this machine's zone, not the API's UTC. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

/** A date option as the instant the API reads: a day (its start, UTC) or a time; anything else is refused here. */
const date = (name: string): string | undefined => {
  const v = option(name);
  if (v === undefined) return undefined;
  const day = /^\d{4}-\d{2}-\d{2}$/.test(v);
  const t = day || INSTANT.test(v) ? Date.parse(day ? `${v}T00:00:00Z` : v) : NaN;
  if (Number.isNaN(t))
    throw new Error(`--${name} must be a date (2026-11-01) or a time with its zone (2026-11-01T12:00:00Z), not "${v}"`);
  return new Date(t).toISOString();
};
/** The generations filter of `list` and `delete`. */
const filter = () => ({
  status: option('status') as GenerationStatus | undefined,
  kind: option('kind') as GenerationKind | undefined,
  createdBefore: date('before'),
});

/** `n` and `word`, plural unless n is 1. */
const count = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const line = (g: ClientGeneration) =>
  `${g.id}  ${g.status.padEnd(9)} ${g.kind.padEnd(21)} ${count(g.images.length, 'image')}  ${g.captions.join(' -> ')}`;

/** Follows a new generation live, prints its progress and saves its PNGs (and an interpolation's animation). */
async function followAndSave(client: GanvasClient, queued: ClientGeneration): Promise<void> {
  console.log(`generation ${queued.id}: ${queued.status}, seed ${queued.seed}`);
  const done = await client.follow(queued.id, (g) => {
    const place = g.status === 'QUEUED' && g.queuePosition != null ? `, ${g.queuePosition} ahead` : '';
    console.log(`  ${g.status} ${Math.round(g.progress * 100)}% (${count(g.images.length, 'image')}${place})`);
  });
  if (done.status !== 'SUCCEEDED')
    throw new Error(`generation ended ${done.status}${done.error ? `: ${done.error}` : ''}`);
  const out = option('out', 'images');
  await mkdir(out, { recursive: true });
  for (const image of done.images) {
    const file = join(out, `${done.id}-${image.index}.png`);
    await writeFile(file, await client.download(image.url));
    // an interpolation's frames share a seed (a noise interpolation's is where it starts): mix tells them apart
    console.log(`saved ${file} (seed ${image.seed}${image.mix == null ? '' : `, mix ${+image.mix.toFixed(3)}`})`);
  }
  if (done.kind.endsWith('INTERPOLATION') && done.animationUrl) {
    const file = join(out, `${done.id}-animation.png`);
    await writeFile(file, await client.download(done.animationUrl));
    console.log(`saved ${file} (the frames animated, there and back)`);
  }
}

/** Each command's options (and --url): any other one given is refused before anything is sent (a misspelt
 * `--befor` would make `delete` remove every generation its other filters match). */
const CREATING = ['model', 'webhook', 'out'];
const FILTER = ['status', 'kind', 'before'];
const OPTIONS: Record<string, string[]> = {
  generate: ['caption', 'count', 'seed', ...CREATING],
  interpolate: ['from', 'to', 'steps', 'seed', ...CREATING],
  variations: ['caption', 'from-seed', 'to-seed', 'steps', ...CREATING],
  style: ['image-id', 'image', 'captions', ...CREATING],
  list: FILTER,
  show: ['id'],
  cancel: ['id'],
  delete: ['id', ...FILTER],
  usage: ['from', 'to'],
  quota: [],
  models: [],
  'webhook-secret': [],
};

async function run(client: GanvasClient): Promise<void> {
  if (command === 'help' || argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const known = Object.hasOwn(OPTIONS, command) ? ['url', ...OPTIONS[command]] : null;
  if (!known) throw new Error(`unknown command "${command}"; npm run example -- help lists them`);
  // the options given: each --name that is not an option's value (as in --caption "--draft")
  const given = argv.filter((a, i) => a.startsWith('--') && (i === 0 || !argv[i - 1].startsWith('--')));
  const unknown = given.filter((a) => !known.includes(a.slice(2)));
  if (unknown.length > 0)
    throw new Error(
      `unknown option ${unknown.join(', ')} for ${command} (its options: ${known.map((o) => `--${o}`).join(' ')})`,
    );
  const model = option('model') ?? null;
  const webhook: WebhookInput | null = option('webhook') ? { url: option('webhook')! } : null;
  switch (command) {
    case 'generate':
      return followAndSave(
        client,
        await client.generateImages({
          caption: required('caption'),
          count: int('count'),
          seed: int('seed'),
          model,
          webhook,
        }),
      );
    case 'interpolate':
      return followAndSave(
        client,
        await client.interpolateCaptions({
          from: required('from'),
          to: required('to'),
          steps: int('steps'),
          seed: int('seed'),
          model,
          webhook,
        }),
      );
    case 'variations':
      return followAndSave(
        client,
        await client.interpolateNoise({
          caption: required('caption'),
          fromSeed: int('from-seed'),
          toSeed: int('to-seed'),
          steps: int('steps'),
          model,
          webhook,
        }),
      );
    case 'style':
      return followAndSave(
        client,
        await client.transferStyle({
          // both given are both sent: the API refuses the pair (BAD_USER_INPUT) rather than this picking one
          ...(option('image') === undefined
            ? { imageId: required('image-id') }
            : { image: (await readFile(option('image')!)).toString('base64'), imageId: option('image-id') }),
          captions: required('captions').split('|'),
          model,
          webhook,
        }),
      );
    case 'list': {
      let listed = 0;
      for await (const g of client.allGenerations(filter())) {
        console.log(line(g));
        listed++;
      }
      if (listed === 0) console.error('no generations match');
      return;
    }
    case 'show': {
      const g = await client.generation(required('id'));
      console.log(JSON.stringify(g, null, 2));
      return;
    }
    case 'cancel':
      console.log(line(await client.cancel(required('id'))));
      return;
    case 'delete':
      // one generation or a filter's: beside an --id, a filter would be ignored (that one deleted, whatever it is)
      if (option('id') && FILTER.some((f) => option(f) !== undefined))
        throw new Error('delete takes --id or a filter (--status, --kind, --before), not both');
      if (option('id')) console.log(`deleted ${await client.deleteGeneration(option('id')!)}`);
      else console.log(`deleted ${count(await client.deleteGenerations(filter()), 'generation')}`);
      return;
    case 'usage': {
      const [from, to] = [date('from'), date('to')];
      for (const u of await client.usage(from ? new Date(from) : undefined, to ? new Date(to) : undefined))
        console.log(
          `${u.day}  ${u.kind.padEnd(21)} ${u.model}  ${count(u.generations, 'generation')}, ${count(u.images, 'image')}`,
        );
      return;
    }
    case 'quota': {
      const q = await client.quota();
      console.log(`requests this minute: ${q.requestsLastMinute} of ${q.perMinute}`);
      console.log(`queued or running:    ${q.queuedNow} of ${q.queued}`);
      console.log(
        `images in 24 hours:   ${q.imagesLast24h}${q.imagesPerDay === null ? ' (no limit)' : ` of ${q.imagesPerDay}`}`,
      );
      return;
    }
    case 'models':
      for (const m of await client.models())
        console.log(
          `${m.name}${m.isDefault ? ' (default)' : ''}: ${m.imageSize}x${m.imageSize}, ${count(m.workers, 'worker')}`,
        );
      return;
    case 'webhook-secret':
      console.log(await client.webhookSecret());
      return;
  }
}

const client = new GanvasClient(option('url', 'http://localhost:4000'), process.env.GANVAS_API_KEY);
run(client)
  .catch((err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => void client.close());
