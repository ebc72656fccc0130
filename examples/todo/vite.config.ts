import { defineConfig } from 'vite'

// In this repository `tandem-sync` is the package built into ../../dist/tandem-sync and linked
// into node_modules/ (what `npm install file:../../dist/tandem-sync` does; scripts/start.sh and
// the e2e tests make the link), so the dev server may serve files from the repository, and React
// is the app's own, never a second copy next to the package. An app that installs tandem-sync
// from npm needs none of this: `vite` with no config works.
export default defineConfig({
  resolve: { dedupe: ['react', 'react-dom'] },
  server: { fs: { allow: ['../..'] } },
})
