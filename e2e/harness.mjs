// What the end-to-end tests share: a real tandem-server (started, SIGKILLed, restarted on the
// same port and data), the built example app served over HTTP, headless Chromium through
// playwright-core, and helpers to drive the app by its test ids and to ask the server's HTTP API.
//
// scripts/test-e2e.sh builds everything and sets TANDEM_E2E_APP (the `vite build` of
// examples/todo) and TANDEM_E2E_SERVER_BIN (the tandem-server binary).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { chromium } from 'playwright-core'
import { serveStatic } from '../scripts/lib/serve-static.mjs'
import { mintToken } from '../scripts/mint-token.mjs'

const APP_DIR = process.env.TANDEM_E2E_APP
const SERVER_BIN = process.env.TANDEM_E2E_SERVER_BIN
if (!APP_DIR || !SERVER_BIN || !existsSync(join(APP_DIR, 'index.html')) || !existsSync(SERVER_BIN)) {
  throw new Error('run the e2e tests with scripts/test-e2e.sh (it builds the app and tandem-server and sets TANDEM_E2E_APP, TANDEM_E2E_SERVER_BIN)')
}

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
]

/** Every child process, killed if this process goes away without `after` having run. */
const children = new Set()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(130))
}

/** Polls `condition` (sync or async) until it returns a truthy value, which it returns. */
export async function waitFor(condition, { timeout = 10_000, interval = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    try {
      const value = await condition()
      if (value) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${last ? `: ${last.message}` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

export function uniqueWorkspace(name) {
  return `e2e-${name}-${randomBytes(4).toString('hex')}`
}

/**
 * A tandem-server process with its own data directory and secret. `start()` picks a free port
 * the first time and keeps it, so the pages reconnect to a restarted server.
 */
export class TandemServer {
  constructor(dir) {
    this.dir = dir
    this.data = join(dir, 'data')
    this.logFile = join(dir, 'server.log')
    this.log = ''
    this.secret = randomBytes(32).toString('hex')
    this.port = 0
    this.process = undefined
  }

  get url() {
    return `ws://127.0.0.1:${this.port}`
  }

  token(scope = 'read write') {
    return mintToken({ secret: this.secret, scope, sub: 'e2e' })
  }

  async start() {
    const child = spawn(SERVER_BIN, ['--listen', `127.0.0.1:${this.port}`, '--data', this.data, '--log-json'], {
      env: { ...process.env, TANDEM_JWT_SECRET: this.secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    this.process = child
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    this.exited = exited
    exited.then(() => children.delete(child))
    const ready = new Promise((resolve) => {
      const read = (chunk) => {
        this.log += chunk
        for (const line of String(chunk).split('\n')) {
          if (!line.includes('tandem-server ready')) continue
          const addr = JSON.parse(line).fields?.addr
          if (addr) resolve(Number(addr.split(':').at(-1)))
        }
      }
      child.stdout.on('data', read)
      child.stderr.on('data', read)
    })
    let timer
    const port = await Promise.race([
      ready,
      exited.then(({ code, signal }) => {
        throw new Error(`tandem-server exited (${code ?? signal}) before it was ready:\n${this.tail()}`)
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`tandem-server not ready after 30 s:\n${this.tail()}`)), 30_000)
      }),
    ]).finally(() => clearTimeout(timer))
    this.port = port
    return this
  }

  /** SIGKILL: no shutdown, no flush — only what was committed to disk survives. */
  async kill() {
    const child = this.process
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await this.exited
  }

  async stop() {
    const child = this.process
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await this.exited
    clearTimeout(timer)
  }

  tail(lines = 40) {
    return this.log.trim().split('\n').slice(-lines).join('\n')
  }

  /** GET on the HTTP API with an admin token; `undefined` on 404. */
  async get(path) {
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      headers: { authorization: `Bearer ${this.token('admin')}` },
    })
    if (response.status === 404) return undefined
    if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`)
    return response.json()
  }

  async put(workspace, key, value) {
    const path = `/v1/workspaces/${workspace}/keys/${encodeURIComponent(key)}`
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token('write')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value }),
    })
    if (!response.ok) throw new Error(`PUT ${path}: HTTP ${response.status} ${await response.text()}`)
    return response.json()
  }

  /** The workspace's todos by id, as the server has them (`{}` if the workspace does not exist). */
  async todos(workspace) {
    const answer = await this.get(`/v1/workspaces/${workspace}`)
    const todos = {}
    for (const [key, value] of Object.entries(answer?.data ?? {})) {
      if (key.startsWith('todos/')) todos[key.slice('todos/'.length)] = value
    }
    return todos
  }

  /** Every change of the workspace, oldest first: `{hash, keys, tx?, client?}`. */
  async history(workspace) {
    const answer = await this.get(`/v1/history/${workspace}?limit=100000`)
    return answer?.changes ?? []
  }
}

/**
 * The fixture of one test file: a tandem-server, the app on HTTP, a browser. Pages are opened
 * in browser contexts of their own (own IndexedDB, own Web Locks): each is a separate device.
 * Everything is stopped after the file's tests, whatever happened.
 */
export function setup() {
  const env = { pages: [] }
  before(async () => {
    env.dir = mkdtempSync(join(tmpdir(), 'tandem-e2e-'))
    env.server = await new TandemServer(env.dir).start()
    env.http = await serveStatic(APP_DIR)
    env.appUrl = `http://127.0.0.1:${env.http.address().port}/`
    env.browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS })
  })
  after(async () => {
    await env.browser?.close().catch(() => {})
    env.http?.close()
    await env.server?.stop()
    if (env.dir) rmSync(env.dir, { recursive: true, force: true })
  })

  /** Opens the app on `workspace` (with a read-write token unless given one): a new device. */
  env.open = async ({ workspace, token = env.server.token() }) => {
    const context = await env.browser.newContext()
    context.setDefaultTimeout(10_000)
    const page = await context.newPage()
    page.problems = []
    page.on('pageerror', (error) => page.problems.push(`page error: ${error.stack ?? error.message}`))
    page.on('console', (m) => m.type() === 'error' && page.problems.push(`console error: ${m.text()}`))
    const query = new URLSearchParams({ server: env.server.url, workspace, token })
    await page.goto(`${env.appUrl}?${query}`)
    await page.getByTestId('sync-status').waitFor()
    env.pages.push(page)
    return page
  }

  /**
   * A test whose failure also reports what every page showed and the server's log tail.
   * Pages the test opened are closed after it.
   */
  env.test = (name, fn, { timeout = 60_000 } = {}) =>
    test(name, { timeout }, async () => {
      env.pages = []
      try {
        await fn()
        for (const page of env.pages) {
          const errors = page.problems.filter((p) => p.startsWith('page error'))
          if (errors.length) throw new Error(`uncaught errors in a page:\n${errors.join('\n')}`)
        }
      } catch (error) {
        const report = [`--- server log (${env.server.logFile}):`, env.server.tail()]
        for (const [i, page] of env.pages.entries()) {
          const text = await page.locator('main').innerText({ timeout: 1_000 }).catch((e) => `(${e.message})`)
          report.push(`--- page ${i}: ${page.url()}`, text, ...page.problems)
        }
        const details = `\n${report.join('\n')}`
        if (error instanceof Error) {
          error.message += details
          if (error.stack) error.stack += details // what the reporter prints
        }
        throw error
      } finally {
        await Promise.all(env.pages.map((page) => page.context().close().catch(() => {})))
      }
    })
  return env
}

// --- the app, by its test ids ------------------------------------------------------------------

/** Waits until the page's connection badge shows `status` (`started` = live). */
export function waitForStatus(page, status, timeout = 10_000) {
  return page.locator(`[data-testid="sync-status"][data-status="${status}"]`).waitFor({ timeout })
}

export async function addTodo(page, title) {
  const input = page.getByTestId('new-todo')
  await input.fill(title)
  await input.press('Enter')
}

/** The row of the todo titled exactly `title`. */
export function todoRow(page, title) {
  return page.getByTestId('todo-item').filter({ has: page.getByTestId('todo-title').getByText(title, { exact: true }) })
}

export async function renameTodo(page, title, newTitle) {
  await todoRow(page, title).getByTestId('todo-title').dblclick()
  const edit = page.getByTestId('todo-edit')
  await edit.fill(newTitle)
  await edit.press('Enter')
}

/** Every row: `{ id, title, done, pending }`, in display order. */
export function rows(page) {
  return page.getByTestId('todo-item').evaluateAll((items) =>
    items.map((item) => ({
      id: item.dataset.id,
      title: item.querySelector('[data-testid="todo-title"]')?.textContent ?? null,
      done: item.querySelector('[data-testid="todo-toggle"]').checked,
      pending: item.dataset.pending === 'true',
    })),
  )
}

/** The transactions the page lists (pending and failed): `{ id, state, text }`. */
export function transactions(page) {
  return page.getByTestId('transaction').evaluateAll((items) =>
    items.map((item) => ({ id: item.dataset.id, state: item.dataset.state, text: item.textContent })),
  )
}
