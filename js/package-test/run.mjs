// The packed package, used as a stranger would: `npm pack` the built package, install the
// tarball with Vite and React from the npm registry into a fresh project, type-check the app
// against the package's declarations, `vite build` it with no plugin, serve the build and check
// in headless Chromium that a collection renders, a mutation shows up, and the pending
// mutation is still there after a reload (IndexedDB outbox). Then the same app on Vite's dev
// server (dependency pre-bundling moves the package's files), which must render too; and the
// package in plain Node, where apps run their tests.
//
//   node js/package-test/run.mjs PACKAGE_DIR        (scripts/test-package.sh builds it first)
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { chromium } from 'playwright-core'
import { serveStatic } from '../../scripts/lib/serve-static.mjs'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = resolve(here, '../..')
const packageDir = resolve(process.argv[2] ?? join(root, 'dist/tandem-sync'))
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const work = mkdtempSync(join(tmpdir(), 'tandem-package-test-'))
const started = Date.now()
let failed = false

function step(message) {
  console.log(`[package] ${((Date.now() - started) / 1000).toFixed(1)}s ${message}`)
}

function run(command, args, cwd) {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}

/** Every `any` in declaration files, outside comments. */
function anyTypes(dir) {
  const found = []
  for (const entry of readdirSync(dir, { recursive: true })) {
    const file = join(dir, entry)
    if (!file.endsWith('.d.ts') || !statSync(file).isFile()) continue
    const code = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
    if (/\bany\b/.test(code)) found.push(relative(dir, file))
  }
  return found
}

try {
  step(`packing ${relative(root, packageDir)}`)
  const tarball = join(work, run('npm', ['pack', '--silent', '--pack-destination', work], packageDir).trim().split('\n').at(-1))
  const listing = run('tar', ['tzf', tarball], work).split('\n')
  for (const file of ['package/package.json', 'package/dist/index.js', 'package/dist/react/index.d.ts', 'package/dist/testing/index.js', 'package/wasm/tandem_bg.wasm']) {
    check(listing.includes(file), `the tarball has ${file}`)
  }
  check(!listing.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TypeScript sources in the tarball')
  check(anyTypes(join(packageDir, 'dist')).length === 0, `no \`any\` in the public declarations: ${anyTypes(join(packageDir, 'dist'))}`)

  step('installing the tarball, vite and react from the registry into a fresh project')
  const app = join(work, 'app')
  cpSync(join(here, 'app'), app, { recursive: true })
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'tandem-package-test-app', private: true, type: 'module' }, null, 2),
  )
  const version = (name) => rootPackage.devDependencies[name]
  run(
    'npm',
    [
      'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error',
      tarball,
      `vite@${version('vite')}`,
      `react@${version('react')}`,
      `react-dom@${version('react-dom')}`,
      `@types/react@${version('@types/react')}`,
      `@types/react-dom@${version('@types/react-dom')}`,
    ],
    app,
  )

  step('in Node: the runtime loads from disk and the testing harness runs')
  run('node', ['node-check.mjs'], app)

  step('type-checking the app against the installed declarations')
  run(join(root, 'node_modules/.bin/tsc'), ['-p', app], app)

  step('vite build (no config, no plugin)')
  const build = run(join(app, 'node_modules/.bin/vite'), ['build'], app)
  check(!/externalized for browser compatibility/.test(build), `no Node module in the browser build:\n${build}`)
  const assets = readdirSync(join(app, 'dist/assets'))
  const wasm = assets.find((f) => f.endsWith('.wasm'))
  check(wasm, `the build emits the wasm module: ${assets}`)
  // Level 9, as `npm run bench` (scenario 7) and docs/browser.md measure it.
  const gzipped = gzipSync(readFileSync(join(app, 'dist/assets', wasm)), { level: 9 }).length
  step(`built: ${assets.join(', ')} (wasm ${(gzipped / 1024).toFixed(0)} KB gzipped)`)
  // GUIDE §8's size budget, checked on what an app actually ships (size is deterministic, unlike time).
  const WASM_BUDGET = 150 * 1024
  if (gzipped > WASM_BUDGET) {
    throw new Error(`the client wasm is ${gzipped} bytes gzipped, over the ${WASM_BUDGET}-byte budget (GUIDE §8): see docs/browser.md`)
  }

  const server = await serveStatic(join(app, 'dist'))
  const url = `http://127.0.0.1:${server.address().port}/`
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
  try {
    const context = await browser.newContext()
    const page = await context.newPage()
    const problems = []
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (message) => message.type() === 'error' && problems.push(`console: ${message.text()}`))
    const todos = () => page.locator('#todos li').allTextContents()

    step(`loading ${url} in headless Chromium`)
    await page.goto(url)
    await page.locator('#todos li', { hasText: 'Welcome' }).waitFor({ timeout: 10_000 })
    await page.locator('#status', { hasText: 'syncing' }).waitFor()
    check((await todos()).join() === 'Welcome', `the synced collection renders: ${await todos()}`)

    step('adding a todo')
    await page.click('#add')
    check((await todos()).join() === 'Welcome,Added offline', `the mutation shows at once: ${await todos()}`)
    await page.waitForFunction(() => window.persistCalls === 1) // On disk by then.
    const pending = await page.locator('#transactions').textContent()
    check(/:persisting$/.test(pending), `the transaction is persisting: ${pending}`)
    await page.locator('#persistence', { hasText: 'indexeddb' }).waitFor()

    step('reloading: the pending todo comes back from the IndexedDB outbox')
    await page.reload()
    await page.locator('#todos li', { hasText: 'Added offline' }).waitFor({ timeout: 10_000 })
    await page.waitForFunction(() => window.persistCalls === 1) // Retried after the reload…
    const restored = await page.locator('#transactions').textContent()
    check(restored === pending, `…as the same transaction: ${restored} (was ${pending})`)
    check(problems.length === 0, `no errors in the page:\n${problems.join('\n')}`)

    step('the same app on the Vite dev server')
    const dev = await startDevServer(app)
    try {
      const devPage = await browser.newPage()
      const devProblems = []
      devPage.on('pageerror', (error) => devProblems.push(`page error: ${error.message}`))
      await devPage.goto(dev.url)
      await devPage.locator('#todos li', { hasText: 'Welcome' }).waitFor({ timeout: 20_000 })
      check(devProblems.length === 0, `no errors on the dev server:\n${devProblems.join('\n')}`)
    } finally {
      dev.process.kill()
    }
  } finally {
    await browser.close()
    server.close()
  }
  step('passed')
} catch (error) {
  failed = true
  console.error(`[package] FAILED: ${error.stack ?? error}`)
  if (error.stdout || error.stderr) console.error(`${error.stdout ?? ''}${error.stderr ?? ''}`)
} finally {
  if (failed) console.error(`[package] the test project is kept in ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)

/** `vite` (dev) in `app` on a free loopback port: resolves once it prints its URL. */
function startDevServer(app) {
  const child = spawn(join(app, 'node_modules/.bin/vite'), ['--host', '127.0.0.1', '--port', '0'], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error(`the dev server did not start:\n${output}`))
    }, 20_000)
    const read = (chunk) => {
      output += chunk
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(output.replace(/\x1b\[[0-9;]*m/g, ''))
      if (url) {
        clearTimeout(timer)
        resolve({ url: url[0], process: child })
      }
    }
    child.stdout.on('data', read)
    child.stderr.on('data', read)
    child.on('exit', (code) => reject(new Error(`the dev server exited (${code}):\n${output}`)))
  })
}

