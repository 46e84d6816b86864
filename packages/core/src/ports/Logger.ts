/**
 * The Logger port. Core never imports winston; the bins wire a winston logger that writes JSON
 * lines to stderr or a file, never to a CNI plugin's stdout.
 */

/** Structured fields: camelCase ids (`networkId`, `endpointId`, `containerId`), `op`, `durationMs`. @category ports */
export type LogFields = Readonly<Record<string, unknown>>

/** @category ports */
export interface Logger {
  readonly debug: (msg: string, fields?: LogFields) => void
  readonly info: (msg: string, fields?: LogFields) => void
  readonly warn: (msg: string, fields?: LogFields) => void
  readonly error: (msg: string, fields?: LogFields) => void
}

/** A logger that drops everything. @category constructors */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined
}
