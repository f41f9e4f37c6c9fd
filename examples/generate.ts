/**
 * Requests images for a caption, follows the job live, and saves the PNGs:
 *   npm run example -- --url http://localhost:4000 --caption "a red flower" --count 4 --out images/
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GanvasClient } from './client.ts';

async function main(): Promise<void> {
  const arg = (name: string, fallback?: string) => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i >= 0 ? process.argv[i + 1] : fallback;
    if (v === undefined) throw new Error(`missing --${name}`);
    return v;
  };
  const client = new GanvasClient(arg('url', 'http://localhost:4000'), process.env.GANVAS_API_KEY);
  const out = arg('out', 'images');
  try {
    const queued = await client.generateImages({
      caption: arg('caption'),
      count: Number(arg('count', '4')),
      seed: process.argv.includes('--seed') ? Number(arg('seed')) : null,
    });
    console.log(`generation ${queued.id}: ${queued.status}, seed ${queued.seed}`);
    const done = await client.follow(queued.id, (g) =>
      console.log(`  ${g.status} ${Math.round(g.progress * 100)}% (${g.images.length} images)`),
    );
    if (done.status !== 'SUCCEEDED')
      throw new Error(`generation ended ${done.status}${done.error ? `: ${done.error}` : ''}`);
    await mkdir(out, { recursive: true });
    for (const image of done.images) {
      const file = join(out, `${done.id}-${image.index}.png`);
      await writeFile(file, await client.download(image.url));
      console.log(`saved ${file} (seed ${image.seed})`);
    }
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
