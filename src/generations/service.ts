/**
 * The service behind the GraphQL API: validates requests, writes a generation and its job in one
 * transaction, cancels, and answers queries. Resolvers call exactly one of these functions.
 */
import { randomInt } from 'node:crypto';
import type { Generation, GenerationKind, GenerationStatus, Image, PrismaClient } from '../db/generated/client.ts';
import { badInput, notFound } from '../errors.ts';
import { CHANNELS } from '../events/topics.ts';
import { enqueue } from '../queue/queue.ts';
import { LIMITS, checkCaption, checkId, checkRange } from './limits.ts';
import type { ModelCatalog } from './models.ts';

export type { Generation, Image };
export type ImageMeta = Omit<Image, 'png'>;

export const TERMINAL: GenerationStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELED'];

export interface GenerateImagesInput { caption: string; count?: number | null; seed?: number | null; model?: string | null }
export interface InterpolateCaptionsInput { from: string; to: string; steps?: number | null; seed?: number | null; model?: string | null }
export interface InterpolateNoiseInput { caption: string; fromSeed?: number | null; toSeed?: number | null; steps?: number | null; model?: string | null }
export interface TransferStyleInput { imageId: string; captions: string[]; model?: string | null }
export interface PageArgs { first?: number | null; after?: string | null; status?: GenerationStatus | null; kind?: GenerationKind | null }

export interface Page {
  nodes: Generation[];
  hasNextPage: boolean;
  cursorOf(g: Generation): string;
}

const newSeed = () => randomInt(0, 2 ** 31 - 1);
const cursorOf = (g: Generation) => Buffer.from(`${g.createdAt.toISOString()}|${g.id}`).toString('base64url');

function parseCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || Number.isNaN(createdAt.getTime())) throw badInput('after is not a cursor from this API');
  return { createdAt, id: checkId('after', id) };
}

export class GenerationService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly models: ModelCatalog,
  ) {}

  private async create(data: { kind: GenerationKind; captions: string[]; seed: number; endSeed?: number; model: string; imageCount: number; styleImageId?: string }): Promise<Generation> {
    return this.prisma.$transaction(async (tx) => {
      const g = await tx.generation.create({ data });
      await enqueue(tx, g.id);
      await tx.$executeRaw`SELECT pg_notify(${CHANNELS.generation}, ${g.id})`;
      return g;
    });
  }

  async generateImages(input: GenerateImagesInput): Promise<Generation> {
    const caption = checkCaption('caption', input.caption);
    const count = checkRange('count', input.count ?? LIMITS.count.default, LIMITS.count);
    const model = this.models.resolve(input.model);
    return this.create({ kind: 'TEXT_TO_IMAGE', captions: [caption], seed: input.seed ?? newSeed(), model: model.name, imageCount: count });
  }

  async interpolateCaptions(input: InterpolateCaptionsInput): Promise<Generation> {
    const from = checkCaption('from', input.from);
    const to = checkCaption('to', input.to);
    const steps = checkRange('steps', input.steps ?? LIMITS.steps.default, LIMITS.steps);
    const model = this.models.resolve(input.model);
    return this.create({ kind: 'CAPTION_INTERPOLATION', captions: [from, to], seed: input.seed ?? newSeed(), model: model.name, imageCount: steps });
  }

  /** One caption, z moving from z(fromSeed) to z(toSeed): style changes, content stays (section 5.4). */
  async interpolateNoise(input: InterpolateNoiseInput): Promise<Generation> {
    const caption = checkCaption('caption', input.caption);
    const steps = checkRange('steps', input.steps ?? LIMITS.steps.default, LIMITS.steps);
    const model = this.models.resolve(input.model);
    const seed = input.fromSeed ?? newSeed();
    return this.create({ kind: 'NOISE_INTERPOLATION', captions: [caption], seed, endSeed: input.toSeed ?? newSeed(), model: model.name, imageCount: steps });
  }

  async transferStyle(input: TransferStyleInput): Promise<Generation> {
    const imageId = checkId('imageId', input.imageId);
    checkRange('captions (number of)', input.captions.length, LIMITS.captions);
    const captions = input.captions.map((c, i) => checkCaption(`captions[${i}]`, c));
    const source = await this.prisma.image.findUnique({ where: { id: imageId }, select: { seed: true, generation: { select: { model: true } } } });
    if (!source) throw notFound(`image ${imageId} does not exist`);
    const model = this.models.resolve(input.model ?? source.generation.model);
    return this.create({ kind: 'STYLE_TRANSFER', captions, seed: source.seed, model: model.name, imageCount: captions.length, styleImageId: imageId });
  }

  /** Queued: canceled at once (its job removed). Running: marked, and the worker stops before its next image. */
  async cancel(id: string): Promise<Generation> {
    const gid = checkId('id', id);
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ status: GenerationStatus }[]>`SELECT "status" FROM "Generation" WHERE "id" = ${gid}::uuid FOR UPDATE`;
      if (rows.length === 0) throw notFound(`generation ${gid} does not exist`);
      if (TERMINAL.includes(rows[0].status)) throw badInput(`generation ${gid} has already finished (${rows[0].status})`);
      const g = await tx.generation.update({ where: { id: gid }, data: { status: 'CANCELED', finishedAt: new Date() } });
      await tx.job.deleteMany({ where: { generationId: gid } });
      await tx.$executeRaw`SELECT pg_notify(${CHANNELS.generation}, ${gid})`;
      return g;
    });
  }

  async generation(id: string): Promise<Generation | null> {
    return this.prisma.generation.findUnique({ where: { id: checkId('id', id) } });
  }

  async requireGeneration(id: string): Promise<Generation> {
    const g = await this.generation(id);
    if (!g) throw notFound(`generation ${id} does not exist`);
    return g;
  }

  async generations(args: PageArgs): Promise<Page> {
    const first = checkRange('first', args.first ?? LIMITS.pageSize.default, LIMITS.pageSize);
    const after = args.after ? parseCursor(args.after) : null;
    const nodes = await this.prisma.generation.findMany({
      where: {
        ...(args.status ? { status: args.status } : {}),
        ...(args.kind ? { kind: args.kind } : {}),
        ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: first + 1,
    });
    return { nodes: nodes.slice(0, first), hasNextPage: nodes.length > first, cursorOf };
  }

  async requireImage(id: string): Promise<ImageMeta> {
    const image = await this.prisma.image.findUnique({ where: { id: checkId('id', id) }, omit: { png: true } });
    if (!image) throw notFound(`image ${id} does not exist`);
    return image;
  }

  async imagesOf(generationId: string): Promise<ImageMeta[]> {
    return this.prisma.image.findMany({ where: { generationId }, orderBy: { index: 'asc' }, omit: { png: true } });
  }

  /** Every image of a generation, PNG bytes in index order (for its animation). */
  async pngsOf(generationId: string): Promise<Uint8Array[]> {
    if (!/^[0-9a-f-]{36}$/i.test(generationId)) return [];
    const rows = await this.prisma.image.findMany({ where: { generationId }, orderBy: { index: 'asc' }, select: { png: true } });
    return rows.map((r) => r.png);
  }

  /** The PNG bytes for /images/<id>.png, or null. */
  async png(id: string): Promise<Uint8Array | null> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
    const row = await this.prisma.image.findUnique({ where: { id }, select: { png: true } });
    return row?.png ?? null;
  }
}
