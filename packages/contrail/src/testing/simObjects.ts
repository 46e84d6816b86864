/**
 * The object store of the Contrail simulator: objects by uuid and by type and fq_name, their
 * references, the back-references and children the server computes from them, and an object
 * rendered as `GET /<type>/<uuid>` answers it.
 */
import * as E from 'fp-ts/lib/Either.js'
import type { SimResponse } from './httpSim.js'

/** A stored object: its properties as sent (refs included), plus identity. @category testing */
export interface SimObject {
  readonly type: string
  readonly uuid: string
  readonly fq_name: ReadonlyArray<string>
  readonly parent_type?: string
  readonly parent_uuid?: string
  props: Record<string, unknown>
}

/** A reference as stored: resolved to its target's fq_name and uuid. */
export interface StoredRef {
  to: string[]
  uuid: string
  attr?: unknown
}

interface BackRef {
  readonly to: ReadonlyArray<string>
  readonly uuid: string
  readonly href: string
  readonly attr?: unknown
}

/** The property names of references the simulator resolves. */
export const REF_FIELDS = [
  'virtual_network_refs',
  'virtual_machine_refs',
  'virtual_machine_interface_refs',
  'security_group_refs',
  'network_ipam_refs'
]
const refTypeOf = (field: string): string => field.replace(/_refs$/, '').replace(/_/g, '-')
/** `virtual-network` → `virtual_network`, as property names spell types. */
export const underscored = (type: string): string => type.replace(/-/g, '_')

/** A plain-text answer. */
export const text = (status: number, t: string): SimResponse => ({ status, text: t })
/** A JSON answer. */
export const json = (status: number, j: unknown): SimResponse => ({ status, json: j })

/** The refs of `field` on an object (stored or about to be). */
export const refsOf = (o: { readonly props: Record<string, unknown> }, field: string): StoredRef[] =>
  (o.props[field] as StoredRef[] | undefined) ?? []

/** @category testing */
export interface ObjectStore {
  readonly all: () => IterableIterator<SimObject>
  readonly get: (uuid: string) => SimObject | undefined
  readonly uuidOf: (type: string, fq: ReadonlyArray<string>) => string | undefined
  readonly put: (o: SimObject) => void
  readonly delete: (o: SimObject) => void
  readonly href: (type: string, uuid: string) => string
  readonly backRefs: (o: SimObject) => Record<string, BackRef[]>
  readonly children: (o: SimObject) => SimObject[]
  readonly render: (o: SimObject, q: URLSearchParams) => Record<string, unknown>
  /** Resolve the refs in `props` in place (by uuid or by fq_name); 404 for a missing target. */
  readonly resolveRefs: (props: Record<string, unknown>) => E.Either<SimResponse, void>
}

/** A store whose hrefs start at `base()` (known once the server listens). @category testing */
export const objectStore = (base: () => string): ObjectStore => {
  const objects = new Map<string, SimObject>()
  const byName = new Map<string, string>()
  const key = (type: string, fq: ReadonlyArray<string>) => `${type}\0${fq.join(':')}`
  const href = (type: string, uuid: string) => `${base()}/${type}/${uuid}`

  const backRefs = (o: SimObject): Record<string, BackRef[]> => {
    const out: Record<string, BackRef[]> = {}
    for (const other of objects.values()) {
      for (const r of REF_FIELDS.flatMap((f) => refsOf(other, f))) {
        if (r.uuid !== o.uuid) continue
        const back = {
          to: other.fq_name,
          uuid: other.uuid,
          href: href(other.type, other.uuid),
          ...(r.attr === undefined ? {} : { attr: r.attr })
        }
        ;(out[`${underscored(other.type)}_back_refs`] ??= []).push(back)
      }
    }
    return out
  }
  const children = (o: SimObject): SimObject[] => [...objects.values()].filter((c) => c.parent_uuid === o.uuid)

  const render = (o: SimObject, q: URLSearchParams): Record<string, unknown> => {
    const full: Record<string, unknown> = {
      uuid: o.uuid,
      name: o.fq_name[o.fq_name.length - 1],
      fq_name: o.fq_name,
      href: href(o.type, o.uuid),
      ...(o.parent_type === undefined
        ? {}
        : { parent_type: o.parent_type, parent_uuid: o.parent_uuid, parent_href: href(o.parent_type, o.parent_uuid!) }),
      ...o.props,
      ...(q.get('exclude_back_refs') === 'true' ? {} : backRefs(o))
    }
    if (q.get('exclude_children') !== 'true') {
      for (const c of children(o)) {
        ;((full[`${underscored(c.type)}s`] ??= []) as unknown[]).push({
          to: c.fq_name,
          uuid: c.uuid,
          href: href(c.type, c.uuid)
        })
      }
    }
    const fields = q.get('fields')
    if (fields === null) return full
    const keep = new Set(['uuid', 'fq_name', 'name', 'href', ...fields.split(',')])
    // lazy field reads compute back-refs even with exclude_back_refs absent
    return Object.fromEntries(Object.entries({ ...full, ...backRefs(o) }).filter(([k]) => keep.has(k)))
  }

  const resolveRefs = (props: Record<string, unknown>): E.Either<SimResponse, void> => {
    for (const f of REF_FIELDS) {
      const refs = props[f]
      if (refs === undefined) continue
      if (!Array.isArray(refs)) return E.left(text(400, `Bad reference in create: ${f} is not a list`))
      const out: StoredRef[] = []
      for (const r of refs as Array<{ to?: string[]; uuid?: string; attr?: unknown }>) {
        const type = refTypeOf(f)
        const uuid = r.uuid ?? (r.to === undefined ? undefined : byName.get(key(type, r.to)))
        const target = uuid === undefined ? undefined : objects.get(uuid)
        if (target?.type !== type) {
          return E.left(text(404, `Bad reference in create: ${type} ${JSON.stringify(r.to ?? r.uuid)} not found`))
        }
        out.push({ to: [...target.fq_name], uuid: target.uuid, ...(r.attr === undefined ? {} : { attr: r.attr }) })
      }
      props[f] = out
    }
    return E.right(undefined)
  }

  return {
    all: () => objects.values(),
    get: (uuid) => objects.get(uuid),
    uuidOf: (type, fq) => byName.get(key(type, fq)),
    put: (o) => {
      objects.set(o.uuid, o)
      byName.set(key(o.type, o.fq_name), o.uuid)
    },
    delete: (o) => {
      objects.delete(o.uuid)
      byName.delete(key(o.type, o.fq_name))
    },
    href,
    backRefs,
    children,
    render,
    resolveRefs
  }
}
