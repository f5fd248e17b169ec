import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The bank's single-page app: built into dist/web, served by `authz bank` under /app/ through Envoy.
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/app/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // One page for the app, one for the redirect_uri.
    rollupOptions: {
      input: {
        index: fileURLToPath(new URL('index.html', import.meta.url)),
        callback: fileURLToPath(new URL('callback.html', import.meta.url)),
      },
    },
  },
});
