#!/usr/bin/env node
/**
 * The CNI plugin executable: the only file that touches the process. A call that a running
 * isthmus daemon can take (../plan.ts planHandoff) is handed to it over its socket;
 * otherwise, or when no daemon answers, the envelope runs here (local.ts, loaded only then).
 * Reads stdin only when needed and at most MAX_STDIN_BYTES of it, writes stdout and stderr, sets
 * the exit code; never calls process.exit, so winston's file transport can flush (winston#228).
 * Whatever happens, stdout carries one CNI document or nothing, never a stack trace.
 */
import { basename } from 'node:path'
import { errorDocument, internalError, MAX_STDIN_BYTES } from '@isthmus/cni-exec/protocol'
import { HANDOFF_COMMANDS, handOff } from '@isthmus/handoff'
import { planHandoff, type HandoffPlan } from '../plan.js'
import { loadLocal } from './loadLocal.js'

// Keeps at most MAX_STDIN_BYTES + 1 bytes (enough for the envelope to say "too large") and
// drains the rest, so a writer that sends everything before reading our answer is not blocked.
const readStdin = (): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let kept = 0
    process.stdin.on('data', (c: Buffer) => {
      if (kept > MAX_STDIN_BYTES) return
      const part = c.subarray(0, MAX_STDIN_BYTES + 1 - kept)
      chunks.push(part)
      kept += part.length
    })
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', reject)
  })

// Set by the native client (packages/cni-native) when it runs this executable as its Node
// fallback (`<bin-dir>/isthmus-node`): the name the runtime ran the client under, which is the
// netconf's `type`; and that the client tried the daemon already, so the call runs here. Read
// once and not passed on (a delegated IPAM plugin gets the environment).
const clientName = process.env['ISTHMUS_CNI_NAME']
const asFallback = process.env['ISTHMUS_CNI_FALLBACK'] === '1'
delete process.env['ISTHMUS_CNI_NAME']
delete process.env['ISTHMUS_CNI_FALLBACK']

// Installed as /opt/cni/bin/isthmus, `type: "isthmus"`; a copy under another name answers to it too.
const self = basename(process.argv[1] ?? process.execPath)
const selfNames = [
  ...new Set([
    'isthmus',
    ...(self.endsWith('.js') || self.endsWith('.cjs') || self === 'node' ? [] : [self]),
    ...(clientName === undefined || clientName === '' ? [] : [clientName])
  ])
]

// A reader that went away (EPIPE) is not a reason to crash with a stack on stderr.
process.stdout.on('error', () => undefined)
process.stderr.on('error', () => undefined)

const write = (stream: NodeJS.WriteStream, text: string): Promise<void> =>
  text === '' ? Promise.resolve() : new Promise((resolve) => stream.write(text, () => resolve()))

// The error document speaks the netconf's version when it names one (the envelope's rule).
const versionOf = (stdin: string): string => {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion
    return typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v) ? v : '1.1.0'
  } catch {
    return '1.1.0'
  }
}

let answered = false
let stdinText: string | undefined

// Exactly one document on stdout, whoever gets there first (main, or the last resort below).
const answer = async (out: {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}): Promise<void> => {
  if (answered) return
  answered = true
  process.exitCode = out.exitCode
  await write(process.stderr, out.stderr)
  await write(process.stdout, out.stdout)
}

// Last resort for a bug: code 999 with a short sentence on stdout, the stack on stderr (the
// plugin's log: runtimes keep a plugin's stderr).
const lastResort = (e: unknown): void => {
  const { error, stack } = internalError(e)
  if (answered) {
    void write(process.stderr, `${stack}\n`)
    return
  }
  void answer({
    stdout: errorDocument(error, stdinText === undefined ? '1.1.0' : versionOf(stdinText)),
    stderr: `${stack}\n`,
    exitCode: 1
  })
}
process.on('uncaughtException', lastResort)
process.on('unhandledRejection', lastResort)

// No top-level await: the executable is bundled as one CommonJS script (a Node SEA's main must be).
const main = async (): Promise<void> => {
  let stdin: string | (() => Promise<string>) = readStdin
  if (HANDOFF_COMMANDS.includes(process.env['CNI_COMMAND'] ?? '')) {
    const text = await readStdin()
    stdin = stdinText = text
    const plan: HandoffPlan = asFallback ? { _tag: 'Local' } : planHandoff(process.env, text, selfNames)
    const handed = plan._tag === 'Local' ? undefined : await handOff(plan.socket, plan.request)
    if (handed?._tag === 'Answered') return answer(handed.reply)
    if (handed?._tag === 'Lost' && plan._tag === 'HandOff') {
      // Code 11, try again later: the daemon may have done the call, so it is not repeated here.
      const lost = { code: 11, msg: 'isthmus daemon did not answer', details: `${plan.socket}: ${handed.why}` }
      return answer({ stdout: errorDocument(lost, versionOf(text)), stderr: '', exitCode: 1 })
    }
    if (handed?._tag === 'NotHandled' && plan._tag === 'HandOff' && plan.cluster !== undefined) {
      // Code 11: a cluster network lives in its daemon (etcd, the overlay); this process cannot serve it.
      const absent = {
        code: 11,
        msg: 'isthmus daemon not reachable',
        details:
          `cluster network ${plan.cluster} is served by \`isthmus serve --cluster\` on ${plan.socket} ` +
          `(the netconf's "daemon"), and none answers there: ${handed.why}`
      }
      return answer({ stdout: errorDocument(absent, versionOf(text)), stderr: '', exitCode: 1 })
    }
    if (handed?._tag === 'NotHandled' && handed.untrusted === true) {
      await write(
        process.stderr,
        `isthmus: not handing the call to the daemon, running it in this process: ${handed.why}\n`
      )
    }
  }
  const out = await (await loadLocal()).runLocal(process.env, stdin, selfNames)
  return answer(out)
}

main().catch(lastResort)
