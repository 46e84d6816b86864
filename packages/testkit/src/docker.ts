/**
 * A real dockerd for end-to-end tests: reuse the one running, or start our own (by PID) and stop
 * it when the test file ends. The Debian client at /usr/bin/docker matches dockerd 20.10; the
 * `docker` first on PATH here is a newer client that refuses some flags against it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { openSync } from 'node:fs'
import { mkdtemp, rm, symlink, mkdir, copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mustParseJson } from './json.js'
import { mustRun, run, stopChild, waitUntil, type RunResult } from './proc.js'

export const DOCKER = '/usr/bin/docker'
/** The test image: Debian's busybox-static as a rootfs (`docker import`). */
export const BUSYBOX_IMAGE = 'isthmus-test-busybox:latest'

/** Run the Debian docker client. */
export const docker = (...args: string[]): Promise<RunResult> => run([DOCKER, ...args])
/** Run it and reject on failure. */
export const mustDocker = (...args: string[]): Promise<RunResult> => mustRun([DOCKER, ...args])

export interface DockerDaemon {
  /** Whether this process started dockerd (and so stops it). */
  readonly started: boolean
  readonly stop: () => Promise<void>
}

const alive = async () => (await docker('info', '--format', '{{.ServerVersion}}')).code === 0

/** Make sure a dockerd answers; start one when none does. */
export const ensureDockerd = async (): Promise<DockerDaemon> => {
  if (await alive()) return { started: false, stop: async () => undefined }
  const logDir = await mkdtemp(join(tmpdir(), 'isthmus-dockerd-'))
  const out = openSync(join(logDir, 'dockerd.log'), 'a')
  const child: ChildProcess = spawn('dockerd', ['--host', 'unix:///var/run/docker.sock'], {
    stdio: ['ignore', out, out],
    detached: false
  })
  await waitUntil('dockerd to answer', alive, 60_000, 250)
  return {
    started: true,
    stop: async () => {
      await stopChild(child, 'SIGTERM', 20_000)
      await rm(logDir, { recursive: true, force: true })
    }
  }
}

/** Build the busybox test image once (kept between runs: an image, not a network or container). */
export const ensureBusyboxImage = async (): Promise<string> => {
  if ((await docker('image', 'inspect', BUSYBOX_IMAGE)).code === 0) return BUSYBOX_IMAGE
  const root = await mkdtemp(join(tmpdir(), 'isthmus-rootfs-'))
  try {
    await mkdir(join(root, 'bin'))
    await copyFile('/bin/busybox', join(root, 'bin/busybox'))
    await mkdir(join(root, 'etc'))
    const applets = (await mustRun(['/bin/busybox', '--list'])).stdout
      .split('\n')
      .filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox')
    for (const a of applets) await symlink('busybox', join(root, 'bin', a))
    const tar = (await mustRun(['sh', '-c', `tar -C '${root}' -c . | ${DOCKER} import - ${BUSYBOX_IMAGE}`])).stdout
    void tar
  } finally {
    await rm(root, { recursive: true, force: true })
  }
  return BUSYBOX_IMAGE
}

/** Remove every container and network whose name starts with `prefix` (test cleanup). */
export const removeDockerObjects = async (prefix: string): Promise<void> => {
  const ctrs = (await docker('ps', '-aq', '--filter', `name=^${prefix}`)).stdout.split('\n').filter(Boolean)
  if (ctrs.length > 0) await docker('rm', '-f', ...ctrs)
  const nets = (await docker('network', 'ls', '-q', '--filter', `name=^${prefix}`)).stdout.split('\n').filter(Boolean)
  for (const n of nets) await docker('network', 'rm', n)
}

/** What `docker inspect` says about one network attachment of a container. */
export interface ContainerNetwork {
  readonly NetworkID: string
  readonly EndpointID: string
  readonly IPAddress: string
  readonly IPPrefixLen: number
  readonly Gateway: string
  readonly GlobalIPv6Address: string
  readonly IPv6Gateway: string
  readonly MacAddress: string
}

/** A container's network attachments by network name (`NetworkSettings.Networks`). */
export const containerNetworks = async (container: string): Promise<Readonly<Record<string, ContainerNetwork>>> =>
  mustParseJson(
    'docker inspect',
    (await mustDocker('inspect', '--format', '{{json .NetworkSettings.Networks}}', container)).stdout
  ) as Record<string, ContainerNetwork>

/** One attachment, failing when the container is not on that network. */
export const containerNetwork = async (container: string, network: string): Promise<ContainerNetwork> => {
  const n = (await containerNetworks(container))[network]
  if (n === undefined) throw new Error(`container ${container} is not on network ${network}`)
  return n
}

/** Run a command inside a running container (`docker exec`). */
export const inContainer = (container: string, ...argv: string[]): Promise<RunResult> =>
  docker('exec', container, ...argv)

/** Whether `container` gets an answer to one ping of `address`, in at most `tries` attempts. */
export const pings = async (container: string, address: string, tries = 1): Promise<boolean> => {
  for (let i = 0; i < tries; i++) {
    if (/1 packets received/.test((await inContainer(container, 'ping', '-c1', '-W2', address)).stdout)) return true
  }
  return false
}

/**
 * GET `path` from `host:port` inside `container` with busybox `nc` (busybox `wget` of the test
 * image crashes on this host); the response text, empty when nothing answered within 3 s.
 */
export const httpGetFrom = async (container: string, host: string, port: number, path = '/'): Promise<string> =>
  (await inContainer(container, 'sh', '-c', `printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`))
    .stdout
