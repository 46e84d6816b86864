/**
 * File names for keys. Ids may hold '/', ':' and '%' (pool ids, IPv6 addresses, netns paths),
 * so each key is percent-encoded into a name of `[A-Za-z0-9_.%-]` that never starts with '.'
 * (names starting with '.' are kept for temporary files, so a temp can never look like a record).
 * Keys whose encoding would not fit in a file name are shortened and made unique by a hash; the
 * record itself carries its key, so nothing needs to read a key back from a hashed name.
 */
import { createHash } from 'node:crypto'

// Characters kept as they are: letters, digits, '_', '-' and '.' (except a leading '.').
const SAFE = /^[A-Za-z0-9_.-]$/

// Linux allows 255 bytes per name; leave room for the '.json' suffix and the '~' + 64 hex digits.
const MAX_ENCODED = 180
const HASH_MARK = '~'

const hex = (b: number): string => `%${b.toString(16).toUpperCase().padStart(2, '0')}`

/**
 * The file name (without suffix) of a key: reversible for keys up to 180 encoded characters,
 * `<prefix>~<sha256>` beyond.
 *
 * @category utils
 */
export const encodeName = (key: string): string => {
  let out = ''
  for (const ch of key) {
    if (SAFE.test(ch) && !(out === '' && ch === '.')) out += ch
    else for (const b of Buffer.from(ch, 'utf8')) out += hex(b)
  }
  if (out.length > 0 && out.length <= MAX_ENCODED) return out
  // '~' is never produced above ('~' itself is encoded as %7E), so a hashed name cannot equal an
  // encoded one; the prefix only helps a person reading the directory. The empty key is hashed
  // too, so that no record is named '.json', which would look like a temporary file.
  const digest = createHash('sha256').update(key, 'utf8').digest('hex')
  return `${out.slice(0, 100)}${HASH_MARK}${digest}`
}

/**
 * The key of an encoded name, or `undefined` when the name is hashed or not an encoding.
 *
 * @category utils
 */
export const decodeName = (name: string): string | undefined => {
  if (name.includes(HASH_MARK) || name.startsWith('.') || !/^[A-Za-z0-9_.%-]*$/.test(name)) return undefined
  try {
    const key = decodeURIComponent(name)
    // Only canonical encodings count: 'a%2Db' is not the name of 'a-b'.
    return encodeName(key) === name ? key : undefined
  } catch {
    return undefined
  }
}
