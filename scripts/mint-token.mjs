#!/usr/bin/env node
// Mints an HS256 JWT that tandem-server accepts (docs/protocol.md, "The token"), with node's
// crypto only. The secret comes from the environment, never from the command line (where `ps`
// would show it):
//
//   TANDEM_JWT_SECRET=… node scripts/mint-token.mjs [--scope "read write"] [--ttl SECONDS]
//                                                   [--sub NAME] [--workspace NAME]...
//
// prints the token (no newline). Defaults: scope "read write", valid for 6 hours, sub "dev", any
// workspace. Also a module: `mintToken({ secret, scope, ttlSeconds, sub, workspaces })`.
import { createHmac } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/**
 * @param {{ secret: string, scope?: string, ttlSeconds?: number, sub?: string, workspaces?: string[], now?: number }} options
 * @returns {string}
 */
export function mintToken({ secret, scope = 'read write', ttlSeconds = 6 * 3600, sub = 'dev', workspaces, now = Date.now() }) {
  if (!secret) throw new Error('mintToken: no secret')
  const part = (object) => Buffer.from(JSON.stringify(object)).toString('base64url')
  const claims = { exp: Math.floor(now / 1000) + ttlSeconds, scope, sub }
  if (workspaces?.length) claims.workspaces = workspaces
  const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`
}

const isMain = process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
if (isMain) {
  const { values } = parseArgs({
    options: {
      scope: { type: 'string', default: 'read write' },
      ttl: { type: 'string', default: String(6 * 3600) },
      sub: { type: 'string', default: 'dev' },
      workspace: { type: 'string', multiple: true },
    },
  })
  const secret = process.env.TANDEM_JWT_SECRET
  if (!secret) {
    console.error('mint-token: set TANDEM_JWT_SECRET (the secret tandem-server runs with)')
    process.exit(2)
  }
  const ttlSeconds = Number(values.ttl)
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    console.error(`mint-token: --ttl must be a positive number of seconds, not ${values.ttl}`)
    process.exit(2)
  }
  process.stdout.write(mintToken({ secret, scope: values.scope, ttlSeconds, sub: values.sub, workspaces: values.workspace }))
}
