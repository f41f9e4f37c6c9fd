/**
 * The public GraphQL types. Glossary: a *generation* is one request (text to image, caption
 * interpolation or style transfer) and its images; a *job* is its place in the queue; a *caption
 * embedding* is phi(t); a *style vector* is S(image), the z that redraws an image's pose and background.
 */
import 'reflect-metadata';
import { ArgsType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { GenerationKind, GenerationStatus } from '../db/generated/enums.ts';

registerEnumType(GenerationKind, { name: 'GenerationKind' });
registerEnumType(GenerationStatus, { name: 'GenerationStatus' });

@ObjectType()
export class Generation {
  @Field(() => ID) id: string;
  @Field(() => GenerationKind) kind: GenerationKind;
  @Field(() => GenerationStatus) status: GenerationStatus;
  @Field(() => [String], { description: 'One caption; the two ends of an interpolation; the new captions of a style transfer.' }) captions: string[];
  @Field(() => Int, { description: 'Chosen by the server when the request gives none.' }) seed: number;
  @Field(() => Int, { nullable: true, description: 'The second noise seed of a NOISE_INTERPOLATION.' }) endSeed: number | null;
  @Field() model: string;
  @Field(() => String, { nullable: true }) error: string | null;
  @Field(() => Float, { description: '0..1' }) progress: number;
  @Field() createdAt: Date;
  @Field(() => Date, { nullable: true }) startedAt: Date | null;
  @Field(() => Date, { nullable: true }) finishedAt: Date | null;
  // images: resolved by GenerationResolver
}

@ObjectType()
export class Image {
  @Field(() => ID) id: string;
  @Field(() => Int) index: number;
  @Field(() => Int) width: number;
  @Field(() => Int) height: number;
  @Field() caption: string;
  @Field(() => Int) seed: number;
  @Field(() => Float, { nullable: true, description: 'Interpolation weight of the second caption (or noise seed), 0..1.' }) mix: number | null;
  generationId: string;
  token: string;
  // url and generation: resolved by ImageResolver
}

@ObjectType()
export class ModelInfo {
  @Field() name: string;
  @Field(() => Int) imageSize: number;
  @Field({ description: 'gan, gan-cls, gan-int or gan-int-cls' }) variant: string;
  @Field({ description: 'The model used when a request names none.' }) isDefault: boolean;
  @Field({ description: 'Random weights (npm run model:init): proves the plumbing, not image quality.' }) untrained: boolean;
  @Field(() => Int) trainingSteps: number;
}

@ObjectType()
export class PageInfo {
  @Field() hasNextPage: boolean;
  @Field(() => String, { nullable: true }) endCursor: string | null;
}

@ObjectType()
export class GenerationEdge {
  @Field() cursor: string;
  @Field(() => Generation) node: Generation;
}

@ObjectType()
export class GenerationConnection {
  @Field(() => [GenerationEdge]) edges: GenerationEdge[];
  @Field(() => PageInfo) pageInfo: PageInfo;
}

@InputType()
export class GenerateImagesInput {
  @Field() caption: string;
  @Field(() => Int, { nullable: true, defaultValue: 4 }) count?: number | null;
  @Field(() => Int, { nullable: true }) seed?: number | null;
  @Field(() => String, { nullable: true }) model?: string | null;
}

@InputType()
export class InterpolateCaptionsInput {
  @Field() from: string;
  @Field() to: string;
  @Field(() => Int, { nullable: true, defaultValue: 8 }) steps?: number | null;
  @Field(() => Int, { nullable: true }) seed?: number | null;
  @Field(() => String, { nullable: true }) model?: string | null;
}

@InputType()
export class InterpolateNoiseInput {
  @Field() caption: string;
  @Field(() => Int, { nullable: true, description: 'Chosen by the server when absent.' }) fromSeed?: number | null;
  @Field(() => Int, { nullable: true, description: 'Chosen by the server when absent.' }) toSeed?: number | null;
  @Field(() => Int, { nullable: true, defaultValue: 8 }) steps?: number | null;
  @Field(() => String, { nullable: true }) model?: string | null;
}

@InputType({ description: 'Exactly one of imageId (an image of yours) and image (an upload).' })
export class TransferStyleInput {
  @Field(() => ID, { nullable: true }) imageId?: string | null;
  @Field(() => String, { nullable: true, description: 'A PNG or JPEG, base64 or a data: URL, at most 700 kB and 2048x2048.' }) image?: string | null;
  @Field(() => [String]) captions: string[];
  @Field(() => String, { nullable: true }) model?: string | null;
}

@ArgsType()
export class GenerationsArgs {
  @Field(() => Int, { nullable: true, defaultValue: 20 }) first?: number | null;
  @Field(() => String, { nullable: true }) after?: string | null;
  @Field(() => GenerationStatus, { nullable: true }) status?: GenerationStatus | null;
  @Field(() => GenerationKind, { nullable: true }) kind?: GenerationKind | null;
}
