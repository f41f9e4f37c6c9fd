/**
 * Runs `task` now and every `everyMs`, one run at a time (a tick while one runs is skipped); stop() ends it and
 * waits for the run in progress. `task` handles its own errors (it logs them): a rejection would be unhandled.
 */
export function repeat(everyMs: number, task: () => Promise<void>): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  const tick = () => {
    running ??= task().finally(() => {
      running = null;
    });
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
