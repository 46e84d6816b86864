/**
 * `local.ts` inside the Node SEA: its bundle is an asset of the executable, compiled only when a
 * call runs in the process, with the V8 code cache made at build time (same node binary), so the
 * fallback costs what the single bundle cost before. scripts/build.mjs puts this module in place of
 * loadLocal.ts.
 */
import Module, { createRequire } from 'node:module'
import { getAsset } from 'node:sea'
import { Script } from 'node:vm'
import type * as Local from './local.js'

/** The asset names build.mjs stores the bundle and its code cache under. @category constants */
export const LOCAL_ASSET = 'local.cjs'
export const LOCAL_CACHE_ASSET = 'local.cache'

/** @category utils */
export const loadLocal = (): Promise<typeof Local> => {
  const code = getAsset(LOCAL_ASSET, 'utf8')
  const cachedData = Buffer.from(getAsset(LOCAL_CACHE_ASSET))
  const fn = new Script(Module.wrap(code), { filename: LOCAL_ASSET, cachedData }).runInThisContext() as (
    exports: object,
    require: NodeJS.Require,
    module: { exports: object },
    filename: string,
    dirname: string
  ) => void
  const module = { exports: {} }
  // The bundle needs node's built-in modules only.
  fn(module.exports, createRequire(process.execPath), module, LOCAL_ASSET, '/')
  return Promise.resolve(module.exports as typeof Local)
}
