/**
 * graphql-ws's `subscribe` with each event's execution shared: the subscriptions that one event wakes, and that run
 * the same operation (the same parsed document: src/api/documents.ts hands one object per text) under the same key
 * (`keyOf`: what else a result depends on), get one execution's result, not one each. One generation watched by a
 * thousand subscribers costs one execution per change, where it cost a thousand (with the garbage they leave).
 *
 * A result is shared only until the event loop's turn that made it ends (setImmediate): a later event executes
 * afresh even where `keyOf` cannot tell the two apart.
 *
 * A result the same as the one a subscription was sent last is not sent again: two changes read as one (the read
 * woken by the first saw the second too, and the second's wake read it again), or a change to nothing it selects.
 */
import { type DocumentNode, type ExecutionArgs, type ExecutionResult, createSourceEventStream, execute } from 'graphql';

type Results = Map<string, Promise<ExecutionResult>>;

/** Each shared result as JSON, made once for all the subscriptions it goes to. */
const texts = new WeakMap<ExecutionResult, string>();
const textOf = (result: ExecutionResult): string => {
  let text = texts.get(result);
  if (text === undefined) texts.set(result, (text = JSON.stringify(result)));
  return text;
};

export function sharedSubscribe(
  /** Everything besides the document that the result of executing `args` with `root` depends on. */
  keyOf: (args: ExecutionArgs, root: unknown) => string,
): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  let shared = new WeakMap<DocumentNode, Results>();
  let dropping = false;
  const executeShared = (args: ExecutionArgs, root: unknown): Promise<ExecutionResult> => {
    const key = keyOf(args, root);
    let byKey = shared.get(args.document);
    if (!byKey) shared.set(args.document, (byKey = new Map()));
    let result = byKey.get(key);
    if (!result) {
      result = Promise.resolve(execute({ ...args, rootValue: root }));
      byKey.set(key, result);
      if (!dropping) {
        dropping = true;
        setImmediate(() => {
          shared = new WeakMap();
          dropping = false;
        });
      }
    }
    return result;
  };
  return async (args) => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source; // the subscription refused (its errors)
    const events = source[Symbol.asyncIterator]();
    const done = async () => void (await events.return?.());
    let sent: string | undefined;
    // as graphql's own subscribe maps its source (return() reaches the source at once, even while it waits)
    const results: AsyncIterableIterator<ExecutionResult> = {
      [Symbol.asyncIterator]: () => results,
      next: async () => {
        for (;;) {
          const event = await events.next();
          if (event.done) return event;
          let result: ExecutionResult;
          try {
            result = await executeShared(args, event.value);
          } catch (err) {
            await done().catch(() => {});
            throw err;
          }
          const text = textOf(result);
          if (text === sent) continue;
          sent = text;
          return { value: result, done: false };
        }
      },
      return: async () => {
        await done();
        return { value: undefined, done: true };
      },
    };
    return results;
  };
}
