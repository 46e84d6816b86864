/**
 * CNI_ARGS (CNI SPEC §Parameters, and the CNI_ARGS section of
 * https://github.com/containernetworking/cni/blob/main/CONVENTIONS.md): `K=V;K2=V2`. The keys this plugin
 * reads are decoded; like the reference plugins it refuses any other key unless `IgnoreUnknown`
 * is set, so a typo (`MACC=`) is an error instead of a silently ignored request.
 */
import * as E from 'fp-ts/lib/Either.js'
import { IpAddress, MacAddress } from '@isthmus/core'
import { excerpt } from './Json.js'

/** The CNI_ARGS this plugin knows. @category model */
export interface CniArgs {
  readonly ignoreUnknown: boolean
  /** `IP=`: addresses to assign (host-local and static read it; podman's `--ip`); comma-separated allowed. */
  readonly ips: ReadonlyArray<IpAddress>
  /** `MAC=`: the sandbox interface's MAC (bridge reads it; podman's `--mac-address`). */
  readonly mac?: MacAddress
  /** `K8S_POD_*`: only logged. */
  readonly k8s: Readonly<Record<string, string>>
  /** Every pair as given, for the log. */
  readonly raw: Readonly<Record<string, string>>
}

/** @category constants */
export const NO_ARGS: CniArgs = { ignoreUnknown: false, ips: [], k8s: {}, raw: {} }

const K8S_KEYS = new Set(['K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'])
const KNOWN = new Set(['IgnoreUnknown', 'IP', 'MAC', ...K8S_KEYS])

// The reference's parser (pkg/types/args.go) takes 1, true and True (strconv-like).
const truthy = (v: string): boolean => ['1', 't', 'T', 'true', 'True', 'TRUE'].includes(v)

/** An address as CNI_ARGS or `ips` give it: with or without a prefix length. @category utils */
export const addressOfIpArg = (s: string): IpAddress | undefined => {
  const slash = s.indexOf('/')
  const r = IpAddress.decode(slash < 0 ? s : s.slice(0, slash))
  if (E.isLeft(r)) return undefined
  if (slash >= 0 && !/^\d{1,3}$/.test(s.slice(slash + 1))) return undefined
  return r.right
}

/**
 * Decode CNI_ARGS; every problem is reported (the envelope lists them all at once).
 *
 * @category codecs
 */
export const decodeCniArgs = (s: string): E.Either<ReadonlyArray<string>, CniArgs> => {
  const problems: string[] = []
  const raw: Record<string, string> = {}
  for (const pair of s.split(';')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    if (eq <= 0) {
      problems.push(`ARGS: invalid pair ${JSON.stringify(excerpt(pair))}`)
      continue
    }
    raw[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  const ignoreUnknown = raw['IgnoreUnknown'] !== undefined && truthy(raw['IgnoreUnknown'])
  const unknown = Object.keys(raw).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0 && !ignoreUnknown) {
    problems.push(
      `ARGS: unknown args [${unknown.map((k) => JSON.stringify(excerpt(`${k}=${raw[k] ?? ''}`))).join(' ')}]`
    )
  }
  const ips: IpAddress[] = []
  for (const one of (raw['IP'] ?? '').split(',').filter((x) => x !== '')) {
    const a = addressOfIpArg(one.trim())
    if (a === undefined) problems.push(`ARGS: IP=${excerpt(one)} is not an IP address`)
    else ips.push(a)
  }
  let mac: MacAddress | undefined
  if (raw['MAC'] !== undefined) {
    const m = MacAddress.decode(raw['MAC'])
    if (E.isLeft(m)) problems.push(`ARGS: MAC=${excerpt(raw['MAC'])} is not a MAC address`)
    else mac = m.right
  }
  const k8s = Object.fromEntries(Object.entries(raw).filter(([k]) => K8S_KEYS.has(k)))
  return problems.length > 0
    ? E.left(problems)
    : E.right({ ignoreUnknown, ips, k8s, raw, ...(mac === undefined ? {} : { mac }) })
}
