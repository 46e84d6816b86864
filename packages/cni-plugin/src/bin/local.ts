/**
 * Running a call in this process: the envelope over the real ports. Loaded by the executable only
 * when no daemon takes the call, so a hand-off never pays for compiling the core.
 */
import { runSkel, type SkelOutput, type Stdin } from '@isthmus/cni-exec'
import { linuxRuntime } from '@isthmus/wiring'

/** @category utils */
export const runLocal = (env: NodeJS.ProcessEnv, stdin: Stdin, selfNames: ReadonlyArray<string>): Promise<SkelOutput> =>
  runSkel(linuxRuntime({ env, selfNames }))(env, stdin)
