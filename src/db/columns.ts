/** Column lists for raw reads that must give the rows Prisma's client would. */

/**
 * Every column Prisma's client reads of a model but `omit`, in SQL, so that a raw or pool read gives the rows it
 * would: `lists` (text and enum arrays) as text[], which every driver parses, and a NULL list as [], as Prisma
 * gives it.
 */
export function columns<F extends string>(fields: Record<string, F>, omit: F | null, lists: F[] = []): string {
  return Object.values(fields)
    .filter((f) => f !== omit)
    .map((f) => (lists.includes(f) ? `COALESCE("${f}"::text[], '{}') AS "${f}"` : `"${f}"`))
    .join(', ');
}
