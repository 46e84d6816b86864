/**
 * How the executable reaches `local.ts`: an import, for the tsc output and the sources. The Node
 * SEA build replaces this module with loadLocal.sea.ts (scripts/build.mjs).
 */
import type * as Local from './local.js'

/** @category utils */
export const loadLocal = (): Promise<typeof Local> => import('./local.js')
