/**
 * The saga outside the core's flows: on a reader that holds only a logger (as an adapter runs it),
 * a failed step undoes the finished ones in reverse, a failed undo is logged with its step and the
 * remaining undos still run, and the caller gets the failing step's own error.
 */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import * as RTE from 'fp-ts/lib/ReaderTaskEither.js'
import { pipe } from 'fp-ts/lib/function.js'
import {
  begin,
  bindEach,
  bindStep,
  doStep,
  invalidConfig,
  io,
  notFound,
  type Logger,
  type LogFields
} from '@isthmus/core'

interface Line {
  readonly msg: string
  readonly fields: LogFields | undefined
}

const recordingLog = (): { log: Logger; warnings: Line[] } => {
  const warnings: Line[] = []
  const ignore = () => undefined
  return {
    log: { debug: ignore, info: ignore, error: ignore, warn: (msg, fields) => warnings.push({ msg, fields }) },
    warnings
  }
}

describe('saga on a reader with only a logger', () => {
  it('undoes finished steps in reverse, logs a failed undo with its step, and fails with the original error', async () => {
    const done: string[] = []
    const ctx = recordingLog()
    const step = (name: string) => RTE.fromIO<string, { log: Logger }>(() => (done.push(name), name))
    const flow = pipe(
      begin<{ log: Logger }>('attach'),
      bindStep(
        'a',
        () => step('a'),
        () => step('undo a')
      ),
      bindStep(
        'b',
        () => step('b'),
        () => RTE.left(io('remove b', new Error('device busy')))
      ),
      doStep(
        'c',
        () => step('c'),
        () => RTE.left(notFound('endpoint', 'c'))
      ),
      doStep('d', () => RTE.left(invalidConfig('d refused')))
    )
    const out = await flow({ log: ctx.log })()
    assert.deepEqual(out, { _tag: 'Left', left: invalidConfig('d refused') })
    // c's undo found nothing (NotFound is success), b's failed and was logged, a's still ran.
    assert.deepEqual(done, ['a', 'b', 'c', 'undo a'])
    assert.equal(ctx.warnings.length, 1)
    assert.equal(ctx.warnings[0]!.msg, 'attach: could not undo b after d failed')
    assert.deepEqual(
      {
        op: ctx.warnings[0]!.fields?.['op'],
        step: ctx.warnings[0]!.fields?.['step'],
        failedStep: ctx.warnings[0]!.fields?.['failedStep']
      },
      { op: 'attach', step: 'b', failedStep: 'd' }
    )
    assert.match(String(ctx.warnings[0]!.fields?.['error']), /device busy/)
  })

  it('runs no undo when every step succeeds', async () => {
    const ctx = recordingLog()
    let undone = 0
    const flow = pipe(
      begin<{ log: Logger }>('ok'),
      bindStep(
        'x',
        () => RTE.right(1),
        () => RTE.fromIO(() => void undone++)
      ),
      RTE.map((s) => s.x)
    )
    assert.deepEqual(await flow({ log: ctx.log })(), { _tag: 'Right', right: 1 })
    assert.equal(undone, 0)
    assert.equal(ctx.warnings.length, 0)
  })

  it('bindEach: one step per item; a failure at item k undoes items k-1 … 0, then the steps before', async () => {
    const done: string[] = []
    const ctx = recordingLog()
    const flow = pipe(
      begin<{ log: Logger }>('pools'),
      bindStep(
        'first',
        () => RTE.right('first'),
        () => RTE.fromIO(() => void done.push('undo first'))
      ),
      bindEach(
        'items',
        () => [1, 2, 3, 4],
        (n) => (n === 3 ? RTE.left(invalidConfig('3 refused')) : RTE.fromIO(() => (done.push(`take ${n}`), n * 10))),
        (n, got) => RTE.fromIO(() => void done.push(`give back ${n} (${got})`))
      )
    )
    assert.deepEqual(await flow({ log: ctx.log })(), { _tag: 'Left', left: invalidConfig('3 refused') })
    assert.deepEqual(done, ['take 1', 'take 2', 'give back 2 (20)', 'give back 1 (10)', 'undo first'])
    const whole = pipe(
      begin<{ log: Logger }>('pools'),
      bindEach(
        'items',
        () => ['a', 'b'],
        (x) => RTE.right(x.toUpperCase())
      ),
      RTE.map((s) => s.items)
    )
    assert.deepEqual(await whole({ log: ctx.log })(), { _tag: 'Right', right: ['A', 'B'] })
  })
})
