#!/usr/bin/env node
/**
 * The CNI plugin executable: the only file that touches the process. A call that a running
 * isthmus daemon can take (ADD, DEL, CHECK, GC, STATUS, and the netconf does not opt out) is
 * handed to it over its socket (handoff/); otherwise, or when no daemon answers, the envelope runs
 * here (local.ts, loaded only then). Reads stdin only when needed, writes stdout and stderr, sets
 * the exit code; never calls process.exit, so winston's file transport can flush (winston#228).
 */
import { basename } from 'node:path'
import { handOff } from '../handoff/client.js'
import { daemonSocketOf, HANDOFF_COMMANDS, HANDOFF_VERSION } from '../handoff/protocol.js'
import { loadLocal } from './loadLocal.js'

const readStdin = (): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    process.stdin.on('data', (c: Buffer) => chunks.push(c))
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', reject)
  })

// Installed as /opt/cni/bin/isthmus, `type: "isthmus"`; a copy under another name answers to it too.
const self = basename(process.argv[1] ?? process.execPath)
const selfNames = [...new Set(['isthmus', ...(self.endsWith('.js') || self.endsWith('.cjs') || self === 'node' ? [] : [self])])]

const write = (stream: NodeJS.WriteStream, text: string): Promise<void> =>
  text === '' ? Promise.resolve() : new Promise((resolve) => stream.write(text, () => resolve()))

const stringEnv = (): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v
  return out
}

// The error document speaks the netconf's version when it names one (the envelope's rule).
const versionOf = (stdin: string): string => {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion
    return typeof v === 'string' && v !== '' ? v : '1.1.0'
  } catch {
    return '1.1.0'
  }
}

// No top-level await: the executable is bundled as one CommonJS script (a Node SEA's main must be).
const main = async (): Promise<void> => {
  try {
    let stdin: string | (() => Promise<string>) = readStdin
    if (HANDOFF_COMMANDS.includes(process.env['CNI_COMMAND'] ?? '')) {
      const text = await readStdin()
      stdin = text
      const socket = daemonSocketOf(text)
      const handed = socket === undefined ? undefined : await handOff(socket, { v: HANDOFF_VERSION, env: stringEnv(), stdin: text, selfNames })
      if (handed?._tag === 'Answered') {
        await write(process.stderr, handed.reply.stderr)
        await write(process.stdout, handed.reply.stdout)
        process.exitCode = handed.reply.exitCode
        return
      }
      if (handed?._tag === 'Lost') {
        // Code 11, try again later: the daemon may have done the call, so it is not repeated here.
        await write(process.stdout, JSON.stringify({ cniVersion: versionOf(text), code: 11, msg: 'isthmus daemon did not answer', details: `${socket}: ${handed.why}` }, null, 4))
        process.exitCode = 1
        return
      }
    }
    const out = await (await loadLocal()).runLocal(process.env, stdin, selfNames)
    await write(process.stderr, out.stderr)
    await write(process.stdout, out.stdout)
    process.exitCode = out.exitCode
  } catch (e) {
    // Last resort for a bug: still one JSON document on stdout, as libcni expects.
    const details = e instanceof Error ? (e.stack ?? e.message) : String(e)
    await write(process.stdout, JSON.stringify({ cniVersion: '1.1.0', code: 999, msg: 'internal error', details }, null, 4))
    process.exitCode = 1
  }
}

void main()
