/**
 * One "host" of the overlay tests and bench: a process inside a host namespace of the underlay
 * (`ip netns exec`), as the daemon runs inside each host, holding a `linuxDataplane` and a
 * `linuxOverlay` and answering calls on them as JSON lines (stdin → stdout). Run as a script it is
 * the host; imported, `startOverlayHost` starts one and gives its calls.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import {
  describe as describeError,
  Endpoint,
  IfName,
  IpAddress,
  MacAddress,
  Network,
  SandboxKey,
  Subnet,
  HostName,
  type CoreError,
  type Endpoint as EndpointT,
  type Network as NetworkT,
  type OverlayPeer,
  type OverlaySpec,
  type Vtep
} from '@isthmus/core'
import { linuxDataplane, linuxOverlay } from '@isthmus/dataplane-linux'

// -------------------------------------------------------------------------------------
// the protocol
// -------------------------------------------------------------------------------------

const VtepC = t.type({ underlay: IpAddress, mac: MacAddress })
const Spec = t.type({ network: Network, vni: t.number, vtep: VtepC })
const Peer = t.type({ host: HostName, underlay: IpAddress, vtepMac: MacAddress, blocks: t.array(Subnet) })

const Request = t.intersection([
  t.type({ id: t.number }),
  t.union([
    t.type({ op: t.literal('vtep') }),
    t.type({ op: t.literal('ensureNetwork'), network: Network }),
    t.type({ op: t.literal('deleteNetwork'), network: Network }),
    t.type({
      op: t.literal('attach'),
      network: Network,
      endpoint: Endpoint,
      sandbox: SandboxKey,
      ifName: IfName
    }),
    t.type({ op: t.literal('ensure'), spec: Spec }),
    t.type({ op: t.literal('setPeers'), spec: Spec, peers: t.array(Peer) }),
    t.type({ op: t.literal('remove'), spec: Spec }),
    t.type({ op: t.literal('removeFirewall') })
  ])
])
type Request = t.TypeOf<typeof Request>

/** A call's answer: its value and how long it took in the host process (ms), or the error's sentence. */
export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown; readonly ms: number }
  | { readonly id: number; readonly ok: false; readonly tag: string; readonly error: string }

// -------------------------------------------------------------------------------------
// the host process
// -------------------------------------------------------------------------------------

const serve = (underlay: IpAddress): void => {
  const dataplane = linuxDataplane()
  const overlay = linuxOverlay({ underlay })
  const handle = (r: Request): TE.TaskEither<CoreError, unknown> => {
    switch (r.op) {
      case 'vtep':
        return overlay.vtep()
      case 'ensureNetwork':
        return dataplane.ensureNetwork(r.network)
      case 'deleteNetwork':
        return dataplane.deleteNetwork(r.network)
      case 'attach': {
        const placement = { _tag: 'PluginMoves', sandbox: r.sandbox, ifName: r.ifName } as const
        const spec = { endpoint: r.endpoint, network: r.network }
        return () =>
          dataplane
            .ensureEndpoint(spec, placement)()
            .then((made) => (E.isLeft(made) ? made : dataplane.place(spec, placement)()))
      }
      case 'ensure':
        return overlay.ensure(r.spec)
      case 'setPeers':
        return overlay.setPeers(r.spec, r.peers)
      case 'remove':
        return overlay.remove(r.spec)
      case 'removeFirewall':
        return dataplane.removeFirewall()
    }
  }
  const lines = createInterface({ input: process.stdin })
  lines.on('line', (line) => {
    const req = Request.decode(JSON.parse(line))
    if (E.isLeft(req)) {
      const id = (JSON.parse(line) as { id?: number }).id ?? -1
      process.stdout.write(`${JSON.stringify({ id, ok: false, tag: 'Request', error: `bad request: ${line}` })}\n`)
      return
    }
    const started = performance.now()
    void handle(req.right)().then((out) => {
      const reply: Reply = E.isRight(out)
        ? { id: req.right.id, ok: true, value: out.right ?? null, ms: performance.now() - started }
        : { id: req.right.id, ok: false, tag: out.left._tag, error: describeError(out.left) }
      process.stdout.write(`${JSON.stringify(reply)}\n`)
    })
  })
  lines.on('close', () => {
    void dataplane.close().then(() => process.exit(0))
  })
}

// -------------------------------------------------------------------------------------
// the client
// -------------------------------------------------------------------------------------

/** A started host process and its calls; every call rejects with the host's sentence on failure. */
export interface OverlayHost {
  readonly netns: string
  readonly underlay: IpAddress
  readonly vtep: () => Promise<Vtep>
  readonly ensureNetwork: (network: NetworkT) => Promise<void>
  readonly deleteNetwork: (network: NetworkT) => Promise<void>
  readonly attach: (network: NetworkT, endpoint: EndpointT, sandbox: string, ifName?: string) => Promise<void>
  /** Each returns the time the call took inside the host process (ms). */
  readonly ensure: (spec: OverlaySpec) => Promise<number>
  readonly setPeers: (spec: OverlaySpec, peers: ReadonlyArray<OverlayPeer>) => Promise<number>
  readonly remove: (spec: OverlaySpec) => Promise<number>
  /** Like the others, but the failure's sentence instead of a rejection. */
  readonly raw: (op: string, args: Record<string, unknown>) => Promise<Reply>
  readonly removeFirewall: () => Promise<void>
  /** Close its stdin and wait for it to exit (SIGKILL after 5 s). */
  readonly stop: () => Promise<void>
  readonly process: ChildProcess
}

const SELF = fileURLToPath(import.meta.url)
const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

/**
 * Start a host process with `argvPrefix` (e.g. `['ip', 'netns', 'exec', ns]`), its overlay on
 * `underlay`. Resolves once it answers.
 */
export const startOverlayHost = async (
  netns: string,
  underlay: string,
  argvPrefix: ReadonlyArray<string>
): Promise<OverlayHost> => {
  const argv = [...argvPrefix, process.execPath, '--conditions=@isthmus/source', '--import', 'tsx', SELF, underlay]
  const child = spawn(argv[0] ?? 'ip', argv.slice(1), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
  const waiting = new Map<number, (r: Reply) => void>()
  createInterface({ input: child.stdout }).on('line', (line) => {
    const r = JSON.parse(line) as Reply
    waiting.get(r.id)?.(r)
    waiting.delete(r.id)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => {
    for (const [id, w] of waiting) w({ id, ok: false, tag: 'Exited', error: `host ${netns} exited: ${stderr}` })
    waiting.clear()
  })
  let next = 0
  const raw = (op: string, args: Record<string, unknown>): Promise<Reply> =>
    new Promise((resolve) => {
      const id = next++
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve({ id, ok: false, tag: 'Exited', error: `host ${netns} exited: ${stderr}` })
        return
      }
      waiting.set(id, resolve)
      child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`)
    })
  const call = async (op: string, args: Record<string, unknown> = {}): Promise<{ value: unknown; ms: number }> => {
    const r = await raw(op, args)
    if (!r.ok) throw new Error(`${op} on ${netns}: ${r.error}`)
    return { value: r.value, ms: r.ms }
  }
  const host: OverlayHost = {
    netns,
    underlay: underlay as IpAddress,
    vtep: async () => (await call('vtep')).value as Vtep,
    ensureNetwork: async (network) => void (await call('ensureNetwork', { network })),
    deleteNetwork: async (network) => void (await call('deleteNetwork', { network })),
    attach: async (network, endpoint, sandbox, ifName = 'eth0') =>
      void (await call('attach', { network, endpoint, sandbox, ifName })),
    ensure: async (spec) => (await call('ensure', { spec })).ms,
    setPeers: async (spec, peers) => (await call('setPeers', { spec, peers })).ms,
    remove: async (spec) => (await call('remove', { spec })).ms,
    raw,
    removeFirewall: async () => void (await call('removeFirewall')),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timer)
      }
    },
    process: child
  }
  try {
    await host.vtep()
  } catch (e) {
    await host.stop()
    throw e
  }
  return host
}

if (process.argv[1] === SELF) {
  const underlay = process.argv[2]
  if (underlay === undefined || !IpAddress.is(underlay)) {
    process.stderr.write('usage: overlayHost.ts <underlay address>\n')
    process.exit(2)
  }
  serve(underlay)
}
