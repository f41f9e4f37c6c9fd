/** What a request may ask for; each violation is a BAD_USER_INPUT error naming the field. */
import { badInput } from '../errors.ts';

/** BAD_USER_INPUT about `field` as the checks name it ("captions[2]", "captions (number of)"): its input field. */
const refused = (field: string, message: string) => badInput(message, field.replace(/[ [].*$/, ''));

export const LIMITS = {
  captionLength: 500,
  idempotencyKeyLength: 200,
  count: { min: 1, max: 16, default: 4 },
  steps: { min: 2, max: 16, default: 8 },
  captions: { min: 1, max: 16 },
  pageSize: { min: 1, max: 100, default: 20 },
} as const;

/** Whether `id` is a UUID (any case): the one id check of ganvas; ids are stored lower-case. */
export const isId = (id: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);

/**
 * A caption as it is stored and drawn: control characters (newlines, tabs, NUL, ...) become spaces (Postgres
 * text cannot hold NUL, and the caption encoder reads them as unknown symbols), a lone surrogate U+FFFD (as
 * Postgres would store it: a retry with the same idempotency key then matches), then trimmed and checked.
 */
export function checkCaption(field: string, caption: string): string {
  const trimmed = caption
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .replace(/\p{Cs}/gu, '\ufffd') // a surrogate without its pair (JSON's "\ud800")
    .trim();
  if (trimmed === '') throw refused(field, `${field} is empty`);
  if ([...trimmed].length > LIMITS.captionLength)
    throw refused(field, `${field} is longer than ${LIMITS.captionLength} characters`);
  return trimmed;
}

/**
 * An idempotency key: 1 to 200 printable characters, kept exactly as sent (none: null); a lone surrogate could not
 * be (Postgres stores U+FFFD for it, so "\ud800" and "\udbff" would be one key).
 */
export function checkIdempotencyKey(key: string | null | undefined): string | null {
  if (key == null) return null;
  if (
    key === '' ||
    [...key].length > LIMITS.idempotencyKeyLength ||
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/.test(key) ||
    /\p{Cs}/u.test(key)
  )
    throw refused(
      'idempotencyKey',
      `idempotencyKey must be 1 to ${LIMITS.idempotencyKeyLength} characters without control characters or lone surrogates`,
    );
  return key;
}

export function checkRange(field: string, value: number, { min, max }: { min: number; max: number }): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw refused(field, `${field} must be from ${min} to ${max}, got ${value}`);
  return value;
}

/** The instants ganvas takes: years 1 to 9999 (a JavaScript Date holds more than Postgres does). */
const DATES = { min: Date.parse('0001-01-01T00:00:00Z'), max: Date.parse('9999-12-31T23:59:59.999Z') };
/** The earliest date ganvas reads (a default range is cut there). */
export const FIRST_DATE = DATES.min;

export function checkDate(field: string, date: Date): Date {
  const t = date.getTime();
  if (!(t >= DATES.min && t <= DATES.max)) throw refused(field, `${field} must be a date in the years 1 to 9999`);
  return date;
}

export function checkId(field: string, id: string): string {
  if (!isId(id)) throw refused(field, `${field} is not a valid id: "${id.slice(0, 60)}"`);
  return id.toLowerCase();
}

/** A list of ids, at most a page's worth (pageSize.max), each a UUID; repeats count once. */
export function checkIds(field: string, ids: readonly string[]): string[] {
  if (ids.length > LIMITS.pageSize.max) throw refused(field, `${field} may name at most ${LIMITS.pageSize.max} ids`);
  return [...new Set(ids.map((id) => checkId(field, id)))];
}
