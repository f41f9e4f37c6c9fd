import { join } from 'node:path';
import { defineConfig } from 'vite';

// The studio (index.html, served by the API at /) and GraphiQL (graphiql.html, served at /graphql to
// browsers) are static files in web/dist; in development `vite` proxies the API.
export default defineConfig({
  root: __dirname,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096, // GraphiQL with React and CodeMirror is one large, lazily served page
    rollupOptions: {
      input: { studio: join(__dirname, 'index.html'), graphiql: join(__dirname, 'graphiql.html') },
      // GraphiQL's dependencies mark React server components ("use client"), meaningless in a bundle
      onwarn: (warning, warn) => void (warning.code === 'MODULE_LEVEL_DIRECTIVE' || warn(warning)),
    },
  },
  server: {
    proxy: {
      '/graphql': { target: 'http://localhost:4000', ws: true },
      '/images': 'http://localhost:4000',
      '/generations': 'http://localhost:4000',
    },
  },
});
