/**
 * Where a command's settings come from besides its flags: `ISTHMUS_<FLAG>` environment variables
 * (`--state-dir` ← `ISTHMUS_STATE_DIR`) and an optional JSON config file (`--config FILE` or
 * `ISTHMUS_CONFIG`) whose keys are the flag names. A flag wins over the environment, which wins
 * over the file, which wins over the default.
 *
 * Not yargs's own `.env()` and `.config()`: under `.strict()` they make every other ISTHMUS_*
 * variable (ISTHMUS_ETCD_PASSWORD, the CNI client's ISTHMUS_CNI_*) an "unknown argument", they turn
 * a number that is not one into null without a word, and their errors never say which variable or
 * file a bad value came from. Here a variable that names no option of the command is ignored, a
 * config key no isthmus command knows is refused, and every bad value names its source.
 */
import { readFileSync } from 'node:fs'

/** A usage error: exit code 2 (the bin's). */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The variable prefix: `ISTHMUS_` + the flag name in upper case, dashes as underscores. */
export const ENV_PREFIX = 'ISTHMUS_'
export const CONFIG_VAR = `${ENV_PREFIX}CONFIG`

export const envVarOf = (flag: string): string => `${ENV_PREFIX}${flag.toUpperCase().replace(/-/g, '_')}`

// Never read from a variable or the file: yargs's own, the config flag itself, and positionals.
const NOT_SETTINGS = new Set(['help', 'version', 'config', '$0', '_', 'action', 'ids', 'host'])

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const camel = (name: string): string => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())

/** The flags given on the command line (their kebab names), up to a `--`. */
export const flagsGiven = (argv: ReadonlyArray<string>): ReadonlySet<string> => {
  const given = new Set<string>()
  for (const token of argv) {
    if (token === '--') break
    const long = /^--(?:no-)?([^=]+)/.exec(token)
    if (long !== null) {
      given.add(kebab(long[1]!))
      given.add(kebab(token.slice(2).split('=')[0]!))
    }
  }
  return given
}

/** Where a value came from, for error messages. */
export type Source = { readonly kind: 'env'; readonly name: string } | { readonly kind: 'file'; readonly file: string }

export const sourceText = (s: Source): string => (s.kind === 'env' ? s.name : `config file ${s.file}`)

interface OptionsView {
  readonly key: Record<string, unknown>
  readonly number: ReadonlyArray<string>
  readonly boolean: ReadonlyArray<string>
  readonly choices: Record<string, ReadonlyArray<unknown>>
}

// A text (from a variable) or a JSON value (from the file) as the option's type wants it.
const valueFor = (flag: string, raw: unknown, o: OptionsView, from: Source): unknown => {
  const bad = (what: string): never => {
    throw new UsageError(`${sourceText(from)}: --${flag} takes ${what} (got ${JSON.stringify(raw)})`)
  }
  let v: unknown = raw
  if (o.boolean.includes(flag)) {
    if (typeof raw === 'string' && /^(true|1|yes)$/i.test(raw)) v = true
    else if (typeof raw === 'string' && /^(false|0|no|)$/i.test(raw)) v = false
    else if (typeof raw !== 'boolean') bad('true or false')
  } else if (o.number.includes(flag)) {
    v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw
    if (typeof v !== 'number' || !Number.isFinite(v)) bad('a number')
  } else if (typeof raw !== 'string') {
    // strings only: a number in the file for a text flag is most likely a mistake of quoting
    if (typeof raw === 'number') v = String(raw)
    else bad('a string')
  }
  const choices = o.choices[flag]
  if (choices !== undefined && !choices.includes(v)) bad(`one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`)
  return v
}

const readConfig = (file: string): Record<string, unknown> => {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new UsageError(`config file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw new UsageError(`config file ${file}: not JSON (${(e as Error).message})`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UsageError(
      `config file ${file}: expected a JSON object whose keys are flag names, such as {"log-level": "debug"}`
    )
  }
  return doc as Record<string, unknown>
}

export interface SettingsLayer {
  /** Where each option whose value did not come from the command line came from (kebab names). */
  readonly sources: Map<string, Source>
  /** The yargs middleware (before validation) that fills in variables and the file. */
  readonly middleware: (argv: Record<string, unknown>, y: unknown) => void
}

/**
 * The environment and config file layer of one parse. `allFlags` lists every flag of every
 * command (a config key outside it is a typo); `env` is the process's environment.
 */
export const settingsLayer = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
  allFlags: () => ReadonlySet<string>
): SettingsLayer => {
  const sources = new Map<string, Source>()
  const given = flagsGiven(argv)
  const middleware = (parsed: Record<string, unknown>, y: unknown): void => {
    // the yargs instance, whose options are the chosen command's by now
    const o = (y as { getOptions: () => OptionsView }).getOptions()
    const flags = Object.keys(o.key).filter((k) => !NOT_SETTINGS.has(k))
    const set = (flag: string, v: unknown): void => {
      parsed[flag] = v
      parsed[camel(flag)] = v
    }
    const configFile = typeof parsed['config'] === 'string' ? parsed['config'] : env[CONFIG_VAR]
    if (configFile !== undefined && configFile !== '') {
      const doc = readConfig(configFile)
      const known = new Set(flags)
      for (const [key, raw] of Object.entries(doc)) {
        if (NOT_SETTINGS.has(key) || !(known.has(key) || allFlags().has(key))) {
          throw new UsageError(
            `config file ${configFile}: ${JSON.stringify(key)} is no flag of isthmus (keys are flag names, such as "state-dir")`
          )
        }
        // a key of another command's flag: the same file serves serve, status and the listings
        if (!known.has(key) || given.has(key) || (env[envVarOf(key)] ?? '') !== '') continue
        const from: Source = { kind: 'file', file: configFile }
        set(key, valueFor(key, raw, o, from))
        sources.set(key, from)
      }
    }
    for (const flag of flags) {
      const name = envVarOf(flag)
      const raw = env[name]
      // empty is unset: dockerd passes every Env entry of a managed plugin, set or not
      if (raw === undefined || raw === '' || given.has(flag)) continue
      const from: Source = { kind: 'env', name }
      set(flag, valueFor(flag, raw, o, from))
      sources.set(flag, from)
    }
  }
  return { sources, middleware }
}
