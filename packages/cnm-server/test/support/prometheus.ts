/**
 * Reading Prometheus text in tests: parse-prometheus-text-format gives the samples, and, since
 * that parser skips lines it cannot read, every line is also checked against the text format's
 * grammar (a HELP and a TYPE before each family's samples, `name{labels} value` samples).
 */
import { strict as assert } from 'node:assert'
import parse, { type Family } from 'parse-prometheus-text-format'

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{(?:${LABEL}(?:,${LABEL})*,?)?\\})? (?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|[-+]?Inf|NaN)(?: -?\\d+)?$`
)

/** Parse `text`, failing the test on any line outside the text format. */
export const parseMetrics = (text: string): ReadonlyArray<Family> => {
  const typed = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line)
        typed.set(meta[2]!, meta[3]!)
      }
      continue
    }
    const m = SAMPLE.exec(line)
    assert.ok(m !== null, `not a Prometheus sample line: ${line}`)
    const name = m[1]!
    const family = typed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    assert.ok(typed.has(family), `sample before its # TYPE line: ${line}`)
  }
  return parse(text)
}

/** The value of one sample: the family `name`, the sample whose labels include `labels`. */
export const sample = (
  families: ReadonlyArray<Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined => {
  const f = families.find((x) => x.name === name)
  const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return s?.value === undefined ? undefined : Number(s.value)
}
