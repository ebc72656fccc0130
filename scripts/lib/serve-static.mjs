// A static file server for built pages on a free loopback port: the e2e tests, the package test
// and the benchmarks serve `vite build` output with it. Paths outside `dir` are refused.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.json': 'application/json',
}

/**
 * Serves `dir` (`/` → `index.html`) on 127.0.0.1 and resolves to the listening `http.Server`.
 * `headers` are added to every answer (e.g. COOP/COEP for a cross-origin-isolated page).
 */
export function serveStatic(dir, { headers = {}, port = 0 } = {}) {
  const root = normalize(dir + sep)
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://x').pathname)
    const file = normalize(join(root, path.endsWith('/') ? join(path, 'index.html') : path))
    if (!file.startsWith(root)) return response.writeHead(403).end()
    try {
      const body = await readFile(file)
      response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', ...headers })
      response.end(body)
    } catch {
      response.writeHead(404).end()
    }
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}
