/**
 * Secrets that must never reach a log line or an error text: the keystone password, every token
 * issued, and credentials given in a URL. Error bodies come from remote servers, which may echo a
 * request back, so every remote text that goes into an error passes through `Redactor.body`:
 * redacted first, cut to length after, so no cut can leave part of a secret standing.
 */
import { redactUrlCredentials } from '@isthmus/core'

/** A set of secrets and the one function that blanks them out of any text. @category model */
export interface Redactor {
  readonly add: (secret: string | undefined) => void
  /** `text` with every known secret and every URL's credentials blanked (see `redactor`). */
  readonly redact: (text: string) => string
  /** A remote's text for an error sentence: redacted, then one line of at most `max` characters. */
  readonly body: (text: string, max?: number) => string
}

/**
 * Below this length a secret is not replaced where it occurs: blanking a one- to three-character
 * secret would blank it inside ordinary words ("p[redacted]ssword" for `a`), which makes the text
 * unreadable and shows the secret by the holes. A text holding one is withheld whole instead.
 */
const MIN_REPLACED = 4

/** What a text holding a short secret is replaced with. @category constants */
export const WITHHELD = '[text withheld: it may hold a credential]'

/** @category constructors */
export const redactor = (initial: ReadonlyArray<string | undefined> = []): Redactor => {
  const secrets = new Set<string>()
  const add = (s: string | undefined): void => {
    if (s !== undefined && s !== '') secrets.add(s)
  }
  initial.forEach(add)
  const redact = (text: string): string => {
    // Longest first, so a secret that contains another is blanked whole.
    const known = [...secrets].sort((a, b) => b.length - a.length)
    let out = redactUrlCredentials(text)
    for (const s of known) if (s.length >= MIN_REPLACED) out = out.split(s).join('[redacted]')
    return known.some((s) => s.length < MIN_REPLACED && out.includes(s)) ? WITHHELD : out
  }
  return {
    add,
    redact,
    // Redacted before and after the whitespace is folded (a secret may span a line break in the
    // raw text, or hold a run of spaces), and only then cut.
    body: (text, max = 300) => cut(redact(oneLine(redact(text))), max)
  }
}

/**
 * The credentials a URL carries in its userinfo, as they must be blanked wherever they appear: the
 * password as written and percent-decoded, and the `Authorization: Basic` value made of them.
 *
 * @category utils
 */
export const urlSecrets = (url: string): ReadonlyArray<string> => {
  const u = userinfoOf(url)
  if (u === undefined) return []
  // without a password the user part may well be a token (`https://<token>@host`)
  return [u.rawPassword, u.password, ...(u.password === '' ? [u.rawUser, u.user] : []), u.basic].filter((s) => s !== '')
}

/** A URL without its userinfo, and what the userinfo held. @category model */
export interface Userinfo {
  readonly url: string
  /** Percent-decoded, and as written. */
  readonly user: string
  readonly rawUser: string
  readonly password: string
  readonly rawPassword: string
  /** `base64(user:password)`, the value of an `Authorization: Basic` header. */
  readonly basic: string
}

/** The userinfo of `url`, or undefined when it has none (or is not a URL). @category utils */
export const userinfoOf = (url: string): Userinfo | undefined => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  if (u.username === '' && u.password === '') return undefined
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s)
    } catch {
      return s
    }
  }
  const user = decode(u.username)
  const password = decode(u.password)
  const [rawUser, rawPassword] = [u.username, u.password]
  u.username = ''
  u.password = ''
  return {
    url: u.toString(),
    user,
    rawUser,
    password,
    rawPassword,
    basic: Buffer.from(`${user}:${password}`).toString('base64')
  }
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim()

const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 3)}...` : text)
