/**
 * Keystone credentials from where a process can hold them without showing them: the standard
 * OpenStack variables (OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME or OS_TENANT_NAME,
 * OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME) and an openrc-style file of the same KEY=VALUE
 * lines. Never argv (a process list shows it to every user) and never a configuration that other
 * tools cache or log (a CNI netconf is kept in /var/lib/cni/results). The variables win, key by key.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { KeystoneAuth } from './config/tokens.js'

/** @category model */
export type Vars = Readonly<Record<string, string | undefined>>

/**
 * `KEY=VALUE` lines of an openrc file; `export` prefixes, comments, blank lines and quotes
 * allowed. Lines that are not assignments are skipped (an openrc may run commands).
 *
 * @category utils
 */
export const parseCredentialsFile = (text: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, '')
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line)
    if (m === null) continue
    out[m[1]!] = m[2]!.trim().replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

/**
 * Keystone password credentials for `endpoint`, the variables first and the file second. Left:
 * the names of what neither has (never a value).
 *
 * @category utils
 */
export const keystoneAuth = (
  endpoint: { readonly url: string; readonly version: 'v2' | 'v3' },
  env: Vars,
  file: Vars = {}
): E.Either<ReadonlyArray<string>, KeystoneAuth> => {
  const pick = (...keys: ReadonlyArray<string>): string | undefined => {
    for (const source of [env, file]) {
      for (const k of keys) {
        const v = source[k]
        if (v !== undefined && v !== '') return v
      }
    }
    return undefined
  }
  const username = pick('OS_USERNAME')
  const password = pick('OS_PASSWORD')
  const project = pick('OS_PROJECT_NAME', 'OS_TENANT_NAME')
  const missing = [
    ...(username === undefined ? ['OS_USERNAME'] : []),
    ...(password === undefined ? ['OS_PASSWORD'] : []),
    ...(project === undefined ? ['OS_PROJECT_NAME'] : [])
  ]
  if (username === undefined || password === undefined || project === undefined) return E.left(missing)
  const userDomain = pick('OS_USER_DOMAIN_NAME')
  const projectDomain = pick('OS_PROJECT_DOMAIN_NAME')
  return E.right({
    kind: 'keystone',
    url: endpoint.url,
    version: endpoint.version,
    username,
    password,
    project,
    ...(userDomain === undefined ? {} : { userDomain }),
    ...(projectDomain === undefined ? {} : { projectDomain })
  })
}
