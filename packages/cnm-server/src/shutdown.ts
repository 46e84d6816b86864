/**
 * `/IpamDriver.Shutdown`: the graceful stop the libnetwork IPAM wishlist asked for, which Docker
 * itself never calls. The route only asks its host to stop; the host stops as it does on SIGTERM
 * (the listener closes, calls in flight are answered, this one among them, nothing is removed).
 * Served only when the host gives a way to stop: an embedding integrator stops its own process.
 */
import * as TE from 'fp-ts/lib/TaskEither.js'
import * as t from 'io-ts'
import type { CoreError } from '@isthmus/core'
import * as Inspect from './protocol/Inspect.js'
import { route, type Route } from './router.js'

/**
 * The route; `stop` is called once per Shutdown call and must be idempotent. It runs before this
 * call's reply is written, which is safe: the plugin server's close waits for the calls in flight,
 * and this call is one of them.
 */
export const shutdownRoute = (stop: () => void): Route =>
  route('IpamDriver', 'Shutdown', t.unknown, () => {
    stop()
    return TE.right<CoreError, object>(Inspect.ShutdownResponse.encode({}))
  })
