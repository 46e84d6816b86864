/**
 * The Logger port on winston. Lines are JSON (`{"ts","level","msg",...fields}`) on stderr and/or
 * in a file; never on stdout, which a CNI plugin reserves for its one result document. winston's
 * Console transport writes every level to stdout unless told otherwise (seen with winston 3.19).
 * Every line is scrubbed first (./redact.ts): no URL's password reaches a log, whoever logs it.
 */
import winston from 'winston'
import { LOG_LEVELS, type ClosableLogger, type LogFields, type LogLevel, type LogSettings } from '@isthmus/core'
import { scrubInfo } from './redact.js'

/** A Logger writing JSON lines as `opts` says. */
// `close` flushes the file transport; never process.exit before it (winston#228).
export const winstonLogger = (opts: LogSettings): ClosableLogger => {
  const transports: winston.transport[] = []
  if (opts.stderr) transports.push(new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] }))
  if (opts.file !== undefined) transports.push(new winston.transports.File({ filename: opts.file }))
  const w = winston.createLogger({
    level: opts.level,
    levels: winston.config.npm.levels,
    format: winston.format.combine(
      winston.format((info) => {
        ;(info as Record<string, unknown>)['ts'] = new Date().toISOString()
        return scrubInfo(info)
      })(),
      winston.format.json()
    ),
    transports,
    // with no destination at all winston warns on every line; a silent logger is what was asked
    silent: transports.length === 0
  })
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      // winston drops a line below its level only after a trip through its streams; the daemon
      // calls debug on every request
      if (w.isLevelEnabled(level)) w.log(level, msg, fields === undefined ? {} : { ...fields })
    }
  return {
    logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') },
    close: () =>
      new Promise<void>((resolve) => {
        if (opts.file === undefined) return resolve()
        w.on('finish', () => resolve())
        w.end()
      })
  }
}
