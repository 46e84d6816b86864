#!/usr/bin/env node
/**
 * The CNI plugin executable: the only file that touches the process. Reads stdin (only when the
 * envelope asks for it), runs the envelope, writes its stdout and stderr, sets the exit code;
 * never calls process.exit, so winston's file transport can flush (winston#228).
 */
import { basename } from 'node:path'
import { runSkel } from '../skel.js'
import { linuxRuntime } from '../linux.js'

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

// No top-level await: the executable is bundled as one CommonJS script (a Node SEA's main must be).
const main = async (): Promise<void> => {
  try {
    const out = await runSkel(linuxRuntime({ env: process.env, selfNames }))(process.env, readStdin)
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
