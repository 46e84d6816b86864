/**
 * The keystone of the Contrail simulator: v2.0 `POST /v2.0/tokens` and v3 `POST /v3/auth/tokens`
 * for the configured users, tokens with a lifetime, and the check of `X-Auth-Token` on every API
 * call.
 */
import { randomBytes } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as K from '../config/Keystone.js'
import type { SimRequest, SimResponse } from './httpSim.js'
import { json, text } from './simObjects.js'

/** @category testing */
export interface KeystoneUser {
  readonly username: string
  readonly password: string
  readonly project: string
}

/** @category testing */
export interface KeystoneSim {
  /** The answer to a keystone request, or undefined for any other request. */
  readonly handle: (req: SimRequest) => SimResponse | undefined
  /** Whether `req` carries a token that has not expired. */
  readonly valid: (req: SimRequest) => boolean
  readonly expireAll: () => void
  readonly issued: () => number
}

const REFUSED = 'The request you have made requires authentication.'

/** @category testing */
export const keystoneSim = (users: ReadonlyArray<KeystoneUser>, ttlMs: number): KeystoneSim => {
  const tokens = new Map<string, number>()
  let issued = 0
  const issue = (): { token: string; issuedAt: string; expiresAt: string } => {
    const token = randomBytes(16).toString('hex')
    const at = new Date()
    const expires = new Date(at.getTime() + ttlMs)
    tokens.set(token, expires.getTime())
    issued++
    return { token, issuedAt: at.toISOString(), expiresAt: expires.toISOString() }
  }
  const userOk = (name: string, password: string, project: string): boolean =>
    users.some((u) => u.username === name && u.password === password && u.project === project)

  const v2 = (body: unknown): SimResponse => {
    const d = K.V2PasswordAuth.decode(body)
    if (E.isLeft(d)) return text(400, 'Expecting auth')
    const a = d.right.auth
    if (!userOk(a.passwordCredentials.username, a.passwordCredentials.password, a.tenantName)) return text(401, REFUSED)
    const t = issue()
    const res: K.V2TokenResponse = {
      access: { token: { id: t.token, issued_at: t.issuedAt, expires: t.expiresAt, tenant: { name: a.tenantName } } }
    }
    return json(200, K.V2TokenResponse.encode(res))
  }

  const v3 = (body: unknown): SimResponse => {
    const d = K.V3PasswordAuth.decode(body)
    if (E.isLeft(d)) return text(400, 'Expecting auth')
    const id = d.right.auth.identity
    if (
      !id.methods.includes('password') ||
      !userOk(id.password.user.name, id.password.user.password, d.right.auth.scope.project.name)
    ) {
      return text(401, REFUSED)
    }
    const t = issue()
    const res: K.V3TokenResponse = { token: { issued_at: t.issuedAt, expires_at: t.expiresAt } }
    return { status: 201, json: K.V3TokenResponse.encode(res), headers: { 'X-Subject-Token': t.token } }
  }

  return {
    handle: (req) => {
      if (req.method !== 'POST') return undefined
      return req.path === '/v2.0/tokens' ? v2(req.body) : req.path === '/v3/auth/tokens' ? v3(req.body) : undefined
    },
    valid: (req) => {
      const tok = req.headers[K.AUTH_TOKEN]
      const exp = typeof tok === 'string' ? tokens.get(tok) : undefined
      return exp !== undefined && exp > Date.now()
    },
    expireAll: () => {
      for (const k of tokens.keys()) tokens.set(k, 0)
    },
    issued: () => issued
  }
}
