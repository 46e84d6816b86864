/**
 * CNI spec versions: the ones this plugin speaks, how they compare, and the VERSION answer
 * (CNI SPEC §VERSION). Results are built once in the 1.1.0 shape and converted on the way out
 * (Result.ts), as libcni's `PrintResult(result, version)` does.
 */
import * as t from 'io-ts'

/** Every version this plugin accepts in a netconf and answers in. @category constants */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const

/** @category model */
export type SupportedVersion = (typeof SUPPORTED_VERSIONS)[number]

/** The newest version: what VERSION and errors before a netconf is read carry. @category constants */
export const CURRENT_VERSION: SupportedVersion = '1.1.0'

/** A netconf without `cniVersion` is 0.1.0 (libcni's rule), which this plugin does not speak. @category constants */
export const IMPLICIT_VERSION = '0.1.0'

/** @category codecs */
export const SupportedVersion = t.keyof(
  { '0.3.0': null, '0.3.1': null, '0.4.0': null, '1.0.0': null, '1.1.0': null },
  'SupportedVersion'
)

/** `{"cniVersion", "supportedVersions"}`: the VERSION answer. @category codecs */
export const VersionInfo = t.type({ cniVersion: t.string, supportedVersions: t.array(t.string) }, 'VersionInfo')
/** @category model */
export type VersionInfo = t.TypeOf<typeof VersionInfo>

/**
 * The VERSION answer; the spec asks for the input's cniVersion, but VERSION reads no stdin (as the
 * reference plugins do).
 *
 * @category constructors
 */
export const versionInfo = (): VersionInfo => ({
  cniVersion: CURRENT_VERSION,
  supportedVersions: [...SUPPORTED_VERSIONS]
})

const parts = (v: string): ReadonlyArray<number> => v.split('.').map((p) => Number.parseInt(p, 10))

/**
 * Compare two dotted versions numerically (`0.4.0` < `1.0.0`); missing parts count as 0.
 *
 * @category utils
 */
export const compareVersions = (a: string, b: string): number => {
  const x = parts(a)
  const y = parts(b)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d < 0 ? -1 : 1
  }
  return 0
}

/** Whether `v` is at least `min`. @category utils */
export const atLeast = (v: string, min: string): boolean => compareVersions(v, min) >= 0

/** 0.3.x and 0.4.0 results carry `ips[].version`; 1.x results do not. @category utils */
export const isPre1 = (v: SupportedVersion): boolean => compareVersions(v, '1.0.0') < 0
