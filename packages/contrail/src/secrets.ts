/**
 * Secrets that must never reach a log line or an error text: the keystone password and every
 * token issued. Error bodies come from remote servers, which may echo a request back, so every
 * text that leaves an adapter passes through `redact`.
 */

/** A set of secrets and the one function that blanks them out of any text. @category model */
export interface Redactor {
  readonly add: (secret: string | undefined) => void
  readonly redact: (text: string) => string
}

/** Secrets shorter than this are not worth blanking (and would blank ordinary words). */
const MIN_SECRET = 4

/** @category constructors */
export const redactor = (initial: ReadonlyArray<string | undefined> = []): Redactor => {
  const secrets = new Set<string>()
  const add = (s: string | undefined): void => {
    if (s !== undefined && s.length >= MIN_SECRET) secrets.add(s)
  }
  initial.forEach(add)
  return {
    add,
    redact: (text) => {
      let out = text
      // Longest first, so a secret that contains another is blanked whole.
      for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('[redacted]')
      return out
    }
  }
}

/** Error bodies are for people: one line, bounded. @category utils */
export const shortBody = (text: string, max = 300): string => {
  const one = text.replace(/\s+/g, ' ').trim()
  return one.length > max ? `${one.slice(0, max - 3)}...` : one
}
