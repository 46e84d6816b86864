/**
 * Test support: one real etcd per test file (started on first use, stopped after the file), and
 * stores and clusters opened on it under fresh prefixes.
 */
import { after } from 'node:test'
import * as E from 'fp-ts/lib/Either.js'
import type * as TE from 'fp-ts/lib/TaskEither.js'
import type * as t from 'io-ts'
import { describe as describeError, report, type CoreError } from '@isthmus/core'
import { startEtcd, uniquePrefix, type EtcdOptions as TestEtcdOptions, type TestEtcd } from '@isthmus/testkit'

/** The value of a TaskEither, failing the test on `Left`. */
export const right = async <A>(te: TE.TaskEither<CoreError, A>): Promise<A> => {
  const r = await te()
  if (E.isLeft(r)) throw new Error(describeError(r.left))
  return r.right
}

/** The error of a TaskEither, failing the test on `Right`. */
export const leftOf = async <A>(te: TE.TaskEither<CoreError, A>): Promise<CoreError> => {
  const r = await te()
  if (E.isRight(r)) throw new Error(`expected a failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

/** An etcd of this test file's own, started once, stopped (and its data removed) after the file. */
export const sharedEtcd = (options: TestEtcdOptions = {}): (() => Promise<TestEtcd>) => {
  let started: Promise<TestEtcd> | undefined
  after(async () => {
    if (started !== undefined) await (await started).stop()
  })
  return () => (started ??= startEtcd(options))
}

/** A key prefix no other test uses: `/isthmus-test/<unique>/`. */
export const freshPrefix = (): string => `/isthmus-test/${uniquePrefix('t')}/`

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A record built through its codec (a test's sample), failing the test if it does not decode. */
export const valid = <A, O>(codec: t.Type<A, O>, value: unknown): A => {
  const r = codec.decode(value)
  if (E.isLeft(r)) throw new Error(`sample ${codec.name} does not decode: ${report(r.left).join('; ')}`)
  return r.right
}
