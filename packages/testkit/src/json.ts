/** JSON a test reads (a command's output, a plugin's reply), parsed with core's one parser. */
import * as E from 'fp-ts/lib/Either.js'
import { pipe } from 'fp-ts/lib/function.js'
import { describe, parseJson } from '@isthmus/core'

/** `text` parsed as JSON, or the test fails with a sentence naming `what`. */
export const mustParseJson = (what: string, text: string): unknown =>
  pipe(
    parseJson(what)(text),
    E.getOrElseW((e) => {
      throw new Error(describe(e))
    })
  )
