/**
 * Runs `task` now and every `everyMs`, one run at a time (a tick while one runs is skipped); stop() ends it and
 * waits for the run in progress, which `stopped` tells to end early (a long one checks it between its steps).
 * `task` handles its own errors (it logs them): a rejection would be unhandled.
 */
export function repeat(everyMs: number, task: (stopped: () => boolean) => Promise<void>): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  let stopping = false;
  const stopped = () => stopping;
  const tick = () => {
    running ??= task(stopped).finally(() => {
      running = null;
    });
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop: async () => {
      stopping = true;
      clearInterval(timer);
      await running;
    },
  };
}
