/** Types of the test-only Prometheus text parser (the package ships none). */
declare module 'parse-prometheus-text-format' {
  export interface Sample {
    readonly value?: string
    readonly labels?: Readonly<Record<string, string>>
    readonly buckets?: Readonly<Record<string, string>>
    readonly count?: string
    readonly sum?: string
  }
  export interface Family {
    readonly name: string
    readonly help: string
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    readonly metrics: ReadonlyArray<Sample>
  }
  /** Throws on text that is not the Prometheus text format. */
  const parse: (text: string) => ReadonlyArray<Family>
  export default parse
}
