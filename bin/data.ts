/**
 * `npm run data -- --out DIR [--images N --size PX --seed N --species N --test-species N]`: the procedural
 * flowers data set (src/data/generate.ts).
 */
import { Args, runMain } from '../src/cli/args.ts';
import { generateFlowers } from '../src/data/generate.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const options = {
    out: a.required('out'),
    images: a.int('images', 4000),
    size: a.int('size', 76),
    seed: a.int('seed', 1),
    species: a.int('species', 50),
    testSpecies: a.int('test-species', 10),
    log: console.log,
  };
  a.end();
  await generateFlowers(options);
});
