/**
 * The managed plugin's entry point: `isthmus serve` (packages/cli), after making /proc/sys
 * writable.
 *
 * dockerd starts a managed plugin from its default container spec, which lists /proc/sys among
 * the read-only paths (runc bind-mounts it read-only), and runc refuses extra mounts inside
 * /proc. The daemon writes sysctls of the host namespace (`net.ipv4.conf.<bridge>.route_localnet`
 * for every new network, `net.ipv4.ip_forward` when it is 0), so this process, which has
 * CAP_SYS_ADMIN (config.json), turns its own view of /proc/sys read-write before the daemon
 * starts. The change stays in the plugin's mount namespace. Outside a container (/proc/sys
 * already writable) nothing is done.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

const probe = '/proc/sys/net/ipv4/ip_forward'
const writable = (): boolean => {
  try {
    accessSync(probe, constants.W_OK)
    return true
  } catch {
    return false
  }
}

if (!writable()) {
  try {
    execFileSync('mount', ['-o', 'remount,bind,rw', '/proc/sys'], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim()
    process.stderr.write(
      `${JSON.stringify({ level: 'warn', message: 'cannot make /proc/sys writable; creating networks will fail', detail: stderr ?? String(e) })}\n`
    )
  }
}

await import('../../cli/src/bin/isthmus.js')
