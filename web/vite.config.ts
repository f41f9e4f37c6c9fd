import { defineConfig } from 'vite';

// The studio is static files in web/dist, served by the API at /; in development `vite` proxies the API.
export default defineConfig({
  root: __dirname,
  build: { outDir: 'dist', emptyOutDir: true },
  server: { proxy: { '/graphql': { target: 'http://localhost:4000', ws: true }, '/images': 'http://localhost:4000', '/generations': 'http://localhost:4000' } },
});
