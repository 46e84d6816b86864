/**
 * The Logger port. Core never imports winston; the bins wire a winston logger that writes JSON
 * lines to stderr or a file, never to a CNI plugin's stdout.
 */
import * as t from 'io-ts'

/** Structured fields: camelCase ids (`networkId`, `endpointId`, `containerId`), `op`, `durationMs`. @category ports */
export type LogFields = Readonly<Record<string, unknown>>

/** @category ports */
export interface Logger {
  readonly debug: (msg: string, fields?: LogFields) => void
  readonly info: (msg: string, fields?: LogFields) => void
  readonly warn: (msg: string, fields?: LogFields) => void
  readonly error: (msg: string, fields?: LogFields) => void
}

/** The levels, most severe first. @category constants */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
/** @category model */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** A level named in a flag or a netconf. @category codecs */
export const LogLevel: t.Type<LogLevel, string> = new t.Type<LogLevel, string, unknown>(
  'LogLevel',
  (u): u is LogLevel => typeof u === 'string' && (LOG_LEVELS as ReadonlyArray<string>).includes(u),
  (u, c) =>
    typeof u === 'string' && (LOG_LEVELS as ReadonlyArray<string>).includes(u)
      ? t.success(u as LogLevel)
      : t.failure(u, c, `one of ${LOG_LEVELS.join(', ')}`),
  (a) => a
)

/** Where and from which level a process logs (flags, a CNI netconf's `logLevel`/`logFile`). @category model */
export interface LogSettings {
  readonly level: LogLevel
  /** Write to stderr (the daemon under journald; a CNI plugin's diagnostics). */
  readonly stderr: boolean
  /** Also append to this file (a CNI netconf's `logFile`). */
  readonly file?: string
}

/** A logger with its flush: call `close` before the process ends. @category ports */
export interface ClosableLogger {
  readonly logger: Logger
  readonly close: () => Promise<void>
}

/** A logger that drops everything. @category constructors */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined
}
