/**
 * What the envelope and the commands need from the outside world, as one record of ports: the
 * real ones are wired in @isthmus/wiring (linuxRuntime), tests wire fakes or the real ones with their own state
 * directory. Nothing here touches `process`.
 */
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type {
  Agent,
  Clock,
  ClosableLogger,
  ControlPlane,
  CoreError,
  DockerPorts,
  Env,
  IfName,
  Logger,
  LogSettings,
  SandboxKey
} from '@isthmus/core'
import type { RawEnv } from './protocol/Env.js'

/** Where the core keeps its state and how the dataplane names its firewall chains. @category ports */
export interface CoreSettings {
  readonly stateDir: string
  readonly chainPrefix?: string
}

/**
 * How to reach a Contrail controller and its vRouter agent (netconf `contrail`), as the
 * translator reads it: the keystone credentials are not resolved yet, only the `OS_*` variables
 * of the plugin's environment are carried, and the file is read by the port.
 *
 * @category ports
 */
export interface ControllerSettings {
  readonly api: string
  /** The agent's port API; the agent adapter's default when absent. */
  readonly agent?: string
  readonly domain?: string
  /** Marks the objects this host creates; the host name when absent. */
  readonly owner?: string
  readonly timeoutMs?: number
  readonly retries?: number
  readonly keystone?: {
    readonly url: string
    readonly version: 'v2' | 'v3'
    readonly credentialsFile?: string
    /** The `OS_*` credential variables of the plugin's environment (they win over the file). */
    readonly vars: Readonly<Record<string, string>>
  }
}

/** The controller's side of the core's ports for networks that name one. @category ports */
export interface ControllerPorts {
  /** Serves the networks that name a controller; the composite sends the others to the built-in IPAM. */
  readonly controlPlane: ControlPlane
  readonly agent: Agent
}

/** An opened core: the flows' Env, and how to close its store. @category ports */
export interface CoreSession {
  readonly env: Env
  readonly close: () => Promise<void>
}

/** The outcome of running another plugin. @category ports */
export interface PluginRun {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * Running other CNI plugins (a delegated IPAM): found by `type` in CNI_PATH, given the same
 * environment with CNI_COMMAND possibly replaced, and the same stdin. `undefined` when no
 * executable of that name is in the path.
 *
 * @category ports
 */
export interface Delegate {
  readonly exec: (
    plugin: string,
    path: ReadonlyArray<string>,
    env: RawEnv,
    stdin: string
  ) => Promise<PluginRun | undefined>
}

/** A link as CHECK and the result need it. @category ports */
export interface LinkState {
  readonly name: string
  readonly mac?: string
  readonly up: boolean
  readonly master?: string
  /** `address/prefix`, link-local IPv6 included. */
  readonly addresses: ReadonlyArray<string>
}

/** Read-only looks at links (CHECK, the MACs of the host-side links in the result, GC scope). @category ports */
export interface Probe {
  /** A link in the host namespace, or undefined when absent. */
  readonly hostLink: (name: string) => TE.TaskEither<CoreError, LinkState | undefined>
  /** Only the MAC of a host link (the ADD result needs no more), or undefined when absent. */
  readonly hostMac: (name: string) => TE.TaskEither<CoreError, string | undefined>
  /** A link inside a sandbox, or undefined when absent. A missing namespace is InvalidNetns. */
  readonly sandboxLink: (netns: SandboxKey, name: IfName) => TE.TaskEither<CoreError, LinkState | undefined>
  /** The names of the links enslaved to a bridge (empty when the bridge is absent). */
  readonly bridgePorts: (bridge: string) => TE.TaskEither<CoreError, ReadonlyArray<string>>
}

/**
 * The ports of the CNI frontend.
 *
 * @category ports
 */
export interface Runtime {
  readonly open: (settings: CoreSettings, log: Logger) => TE.TaskEither<CoreError, CoreSession>
  /** The Contrail config API and vRouter agent of a netconf's `contrail` section (credentials resolved here). */
  readonly controller: (settings: ControllerSettings, log: Logger) => TE.TaskEither<CoreError, ControllerPorts>
  readonly logger: (settings: LogSettings) => ClosableLogger
  readonly delegate: Delegate
  readonly probe: Probe
  readonly clock: Clock
  /** The `type` names this executable answers to (`isthmus`, and its own file name). */
  readonly selfNames: ReadonlyArray<string>
  /**
   * The Docker Engine API and sandbox looks of the `dockerConnect` and `dockerNetwork` modes (absent:
   * refused, code 7).
   */
  readonly docker?: DockerPorts
}
