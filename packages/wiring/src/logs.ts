/** The Logger adapter: winston, JSON lines to stderr and/or a file. */
import type { ClosableLogger, LogSettings } from '@isthmus/core'
import { winstonLogger } from '@isthmus/log'

/** @category constructors */
export const openLogger = (settings: LogSettings): ClosableLogger => winstonLogger(settings)
