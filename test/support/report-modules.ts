/**
 * Preloaded into a ganvas process by tests: on SIGUSR2 it prints the modules loaded so far and its memory,
 * as one JSON line (over 64 KiB: a reader waits for its newline).
 */
process.on('SIGUSR2', () => {
  const modules = Object.keys(require.cache);
  console.log(JSON.stringify({ modules, rss: process.memoryUsage().rss }));
});
