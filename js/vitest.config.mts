import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// `npx vitest run --config js/vitest.config.mts`; the runtime must be built into js/wasm first
// (scripts/test-js.sh does both).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['test/**/*.test.{ts,tsx}'],
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
})
