/**
 * A Contrail VNC config API with keystone, as a real HTTP server on 127.0.0.1
 * (docs/contrail.md, "The config API on the wire"): objects with refs, back-refs and children;
 * server-computed uuids, MACs (from the interface uuid), subnet gateways and instance-ip
 * addresses; the 400/401/404/409 answers of the API server with their texts; keystone v2 and v3 token issue with
 * controllable expiry; failure injection and a journal (see `httpSim.ts`).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import { boundsOf, contains, fromBigInt, IpAddress, Subnet } from '@isthmus/core'
import * as K from '../config/Keystone.js'
import * as Obj from '../config/Objects.js'
import { startHttpSim, type HttpSim, type SimRequest, type SimResponse } from './httpSim.js'

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A stored object: its properties as sent (refs included), plus identity. @category testing */
export interface SimObject {
  readonly type: string
  readonly uuid: string
  readonly fq_name: ReadonlyArray<string>
  readonly parent_type?: string
  readonly parent_uuid?: string
  props: Record<string, unknown>
}

interface StoredRef {
  to: string[]
  uuid: string
  attr?: unknown
}

/** @category testing */
export interface KeystoneUser {
  readonly username: string
  readonly password: string
  readonly project: string
}

/** @category testing */
export interface ContrailSimulatorOptions {
  /** `keystone`: every API call needs a valid X-Auth-Token (401 otherwise). */
  readonly auth?: 'none' | 'keystone'
  readonly users?: ReadonlyArray<KeystoneUser>
  /** Token lifetime; tokens report issue and expiry times accordingly. */
  readonly tokenTtlMs?: number
}

/** @category testing */
export interface SeededSubnet {
  readonly cidr: string
  /** Allocation from the bottom (gateway .1) or, when false, from the top (gateway last-1). */
  readonly addrFromStart?: boolean
}

/** @category testing */
export interface ContrailSimulator extends HttpSim {
  /** Base URLs of the fake keystone: `${url}/v2.0` and `${url}/v3`. */
  readonly keystoneV2: string
  readonly keystoneV3: string
  readonly seedProject: (tenant: string, domain?: string) => string
  readonly seedSecurityGroup: (tenant: string, name?: string) => string
  /** A virtual network with ipam subnets (on the default IPAM), as an operator makes it. */
  readonly seedNetwork: (tenant: string, name: string, subnets: ReadonlyArray<SeededSubnet>) => string
  readonly objects: (type?: string) => ReadonlyArray<SimObject>
  readonly get: (uuid: string) => SimObject | undefined
  /** Objects other than the seeds: what clients created. */
  readonly created: () => ReadonlyArray<SimObject>
  /** Make every issued token invalid now (the next call answers 401). */
  readonly expireTokens: () => void
  readonly tokensIssued: () => number
}

const PARENT: Readonly<Record<string, string | undefined>> = {
  domain: undefined,
  project: 'domain',
  'network-ipam': 'project',
  'security-group': 'project',
  'virtual-network': 'project',
  'virtual-machine-interface': 'project',
  'virtual-machine': undefined,
  'instance-ip': undefined
}
const TYPES = new Set(Object.keys(PARENT))
const underscored = (type: string): string => type.replace(/-/g, '_')
const REF_FIELDS = ['virtual_network_refs', 'virtual_machine_refs', 'virtual_machine_interface_refs', 'security_group_refs', 'network_ipam_refs']
const refTypeOf = (field: string): string => field.replace(/_refs$/, '').replace(/_/g, '-')

const text = (status: number, t: string): SimResponse => ({ status, text: t })
const json = (status: number, j: unknown): SimResponse => ({ status, json: j })

/** The MAC the API server derives from an interface uuid. @category testing */
export const macFromUuid = (uuid: string): string =>
  `02:${uuid.slice(0, 2)}:${uuid.slice(2, 4)}:${uuid.slice(4, 6)}:${uuid.slice(6, 8)}:${uuid.slice(9, 11)}`

/** @category testing */
export const startContrailSimulator = async (options: ContrailSimulatorOptions = {}): Promise<ContrailSimulator> => {
  const objects = new Map<string, SimObject>()
  const byName = new Map<string, string>()
  const seeds = new Set<string>()
  const tokens = new Map<string, number>()
  let issued = 0
  const ttl = options.tokenTtlMs ?? 3_600_000
  let base = ''

  const key = (type: string, fq: ReadonlyArray<string>) => `${type}\0${fq.join(':')}`
  const href = (type: string, uuid: string) => `${base}/${type}/${uuid}`
  const put = (o: SimObject): void => {
    objects.set(o.uuid, o)
    byName.set(key(o.type, o.fq_name), o.uuid)
  }
  const refsOf = (o: SimObject, field: string): StoredRef[] => (o.props[field] as StoredRef[] | undefined) ?? []

  const backRefs = (o: SimObject): Record<string, Array<{ to: ReadonlyArray<string>; uuid: string; href: string; attr?: unknown }>> => {
    const out: Record<string, Array<{ to: ReadonlyArray<string>; uuid: string; href: string; attr?: unknown }>> = {}
    for (const other of objects.values()) {
      for (const f of REF_FIELDS) {
        for (const r of refsOf(other, f)) {
          if (r.uuid !== o.uuid) continue
          const field = `${underscored(other.type)}_back_refs`
          ;(out[field] ??= []).push({ to: other.fq_name, uuid: other.uuid, href: href(other.type, other.uuid), ...(r.attr === undefined ? {} : { attr: r.attr }) })
        }
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
      ...(o.parent_type === undefined ? {} : { parent_type: o.parent_type, parent_uuid: o.parent_uuid, parent_href: href(o.parent_type, o.parent_uuid!) }),
      ...o.props,
      ...(q.get('exclude_back_refs') === 'true' ? {} : backRefs(o))
    }
    if (q.get('exclude_children') !== 'true') {
      for (const c of children(o)) {
        const f = `${underscored(c.type)}s`
        ;((full[f] ??= []) as unknown[]).push({ to: c.fq_name, uuid: c.uuid, href: href(c.type, c.uuid) })
      }
    }
    const fields = q.get('fields')
    if (fields === null) return full
    const keep = new Set(['uuid', 'fq_name', 'name', 'href', ...fields.split(',')])
    // lazy field reads compute back-refs even with exclude_back_refs absent
    const bref = backRefs(o)
    return Object.fromEntries(Object.entries({ ...full, ...bref }).filter(([k]) => keep.has(k)))
  }

  // ---------------------------------------------------------------------------------
  // addresses
  // ---------------------------------------------------------------------------------

  interface SubnetInfo {
    readonly vn: SimObject
    readonly ipam: Record<string, unknown>
    readonly cidr: Subnet
  }
  const subnetsOf = (vn: SimObject): SubnetInfo[] =>
    refsOf(vn, 'network_ipam_refs').flatMap((r) =>
      (((r.attr as { ipam_subnets?: Array<Record<string, unknown>> } | undefined)?.ipam_subnets) ?? []).flatMap((s) => {
        const sub = s['subnet'] as { ip_prefix: string; ip_prefix_len: number }
        const d = Subnet.decode(`${sub.ip_prefix}/${sub.ip_prefix_len}`)
        return E.isRight(d) ? [{ vn, ipam: s, cidr: d.right }] : []
      })
    )
  const usedIn = (s: SubnetInfo): Set<string> => {
    const used = new Set<string>()
    for (const g of [s.ipam['default_gateway'], s.ipam['dns_server_address']]) if (typeof g === 'string') used.add(g)
    for (const o of objects.values()) {
      if (o.type !== 'instance-ip') continue
      const a = o.props['instance_ip_address']
      if (typeof a === 'string' && contains(s.cidr, a as IpAddress)) used.add(a)
    }
    return used
  }
  const nextFree = (s: SubnetInfo): string | undefined => {
    const { first, last } = boundsOf(s.cidr)
    const used = usedIn(s)
    const fromStart = s.ipam['addr_from_start'] === true
    for (let i = 1n; first + i < last; i++) {
      const n = fromStart ? first + i : last - i
      const a = fromBigInt(n, 4)
      if (!used.has(a)) return a
    }
    return undefined
  }

  // ---------------------------------------------------------------------------------
  // create / delete
  // ---------------------------------------------------------------------------------

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
        if (target === undefined || target.type !== type) {
          return E.left(text(404, `Bad reference in create: ${type} ${JSON.stringify(r.to ?? r.uuid)} not found`))
        }
        out.push({ to: [...target.fq_name], uuid: target.uuid, ...(r.attr === undefined ? {} : { attr: r.attr }) })
      }
      props[f] = out
    }
    return E.right(undefined)
  }

  const create = (type: string, raw: unknown, seed = false): SimResponse => {
    const o = (raw as Record<string, unknown> | undefined)?.[type] as Record<string, unknown> | undefined
    if (o === undefined || typeof o !== 'object') return text(400, `Bad Request: no ${type} in body`)
    const fq = o['fq_name']
    if (!Array.isArray(fq) || fq.length === 0 || !fq.every((x) => typeof x === 'string')) return text(400, 'Bad Request: fq_name')
    const exists = byName.get(key(type, fq as string[]))
    if (exists !== undefined) return text(409, `FQ Name: ${JSON.stringify(fq)} exists already with ID: ${exists}`)
    const parentType = PARENT[type]
    let parentUuid: string | undefined
    if (parentType !== undefined) {
      parentUuid = byName.get(key(parentType, (fq as string[]).slice(0, -1)))
      if (parentUuid === undefined) return text(400, `Parent ${JSON.stringify((fq as string[]).slice(0, -1))} type ${parentType} does not exist`)
    }
    const props: Record<string, unknown> = { ...o }
    delete props['fq_name']
    delete props['uuid']
    delete props['parent_type']
    const refs = resolveRefs(props)
    if (E.isLeft(refs)) return refs.left
    const uuid = typeof o['uuid'] === 'string' ? o['uuid'] : randomUUID()

    if (type === 'virtual-network') {
      for (const r of refsOf({ type, uuid, fq_name: fq as string[], props }, 'network_ipam_refs')) {
        for (const s of ((r.attr as { ipam_subnets?: Array<Record<string, unknown>> } | undefined)?.ipam_subnets) ?? []) {
          const sub = s['subnet'] as { ip_prefix: string; ip_prefix_len: number }
          const d = Subnet.decode(`${sub.ip_prefix}/${sub.ip_prefix_len}`)
          if (E.isLeft(d)) return text(400, `Bad subnet ${JSON.stringify(sub)}`)
          const { first, last } = boundsOf(d.right)
          const fromStart = s['addr_from_start'] === true
          s['subnet_uuid'] ??= randomUUID()
          s['default_gateway'] ??= fromBigInt(fromStart ? first + 1n : last - 1n, 4)
          s['dns_server_address'] ??= fromBigInt(fromStart ? first + 2n : last - 2n, 4)
        }
      }
    }
    if (type === 'virtual-machine-interface' && props['virtual_machine_interface_mac_addresses'] === undefined) {
      props['virtual_machine_interface_mac_addresses'] = { mac_address: [macFromUuid(uuid)] }
    }
    if (type === 'instance-ip') {
      const vnRef = refsOf({ type, uuid, fq_name: [], props }, 'virtual_network_refs')[0]
      const vn = vnRef === undefined ? undefined : objects.get(vnRef.uuid)
      if (vn === undefined) return text(400, 'Bad Request: instance-ip needs a virtual_network_refs entry')
      const subnets = subnetsOf(vn)
      const wanted = props['instance_ip_address']
      let subnet = typeof props['subnet_uuid'] === 'string' ? subnets.find((s) => s.ipam['subnet_uuid'] === props['subnet_uuid']) : undefined
      if (props['subnet_uuid'] !== undefined && subnet === undefined) return text(400, `Bad Request: subnet ${String(props['subnet_uuid'])} not in network`)
      if (typeof wanted === 'string') {
        const a = IpAddress.decode(wanted)
        const holder = E.isRight(a) ? subnets.find((s) => contains(s.cidr, a.right)) : undefined
        if (E.isLeft(a) || holder === undefined || (subnet !== undefined && holder !== subnet)) {
          return text(400, `Requested IP address ${wanted} is not in the subnet`)
        }
        if (usedIn(holder).has(a.right)) return text(409, 'IP address already in use')
        props['subnet_uuid'] = holder.ipam['subnet_uuid']
      } else {
        subnet ??= subnets.find((s) => nextFree(s) !== undefined)
        const a = subnet === undefined ? undefined : nextFree(subnet)
        if (subnet === undefined || a === undefined) return text(400, 'Virtual-Network subnet exhausted: no free address')
        props['instance_ip_address'] = a
        props['subnet_uuid'] = subnet.ipam['subnet_uuid']
      }
      props['instance_ip_family'] = 'v4'
    }
    const obj: SimObject = { type, uuid, fq_name: [...(fq as string[])], ...(parentType === undefined ? {} : { parent_type: parentType, parent_uuid: parentUuid! }), props }
    put(obj)
    if (seed) seeds.add(uuid)
    return json(200, {
      [type]: {
        name: obj.fq_name[obj.fq_name.length - 1],
        fq_name: obj.fq_name,
        uuid,
        href: href(type, uuid),
        ...(obj.parent_type === undefined ? {} : { parent_type: obj.parent_type, parent_uuid: obj.parent_uuid, parent_href: href(obj.parent_type, obj.parent_uuid!) })
      }
    })
  }

  const remove = (type: string, uuid: string): SimResponse => {
    const o = objects.get(uuid)
    if (o === undefined || o.type !== type) return text(404, `No ${type} object found for id ${uuid}`)
    const kids = children(o)
    if (kids.length > 0) return text(409, `Delete when children still present: ${JSON.stringify(kids.map((k) => href(k.type, k.uuid)))}`)
    const referrers = Object.values(backRefs(o)).flat()
    if (referrers.length > 0) return text(409, `Delete when resource still referred: ${JSON.stringify(referrers.map((r) => r.href))}`)
    objects.delete(uuid)
    byName.delete(key(o.type, o.fq_name))
    seeds.delete(uuid)
    return json(200, {})
  }

  // ---------------------------------------------------------------------------------
  // keystone
  // ---------------------------------------------------------------------------------

  const issue = (): { token: string; issuedAt: Date; expiresAt: Date } => {
    const token = randomBytes(16).toString('hex')
    const issuedAt = new Date()
    const expiresAt = new Date(issuedAt.getTime() + ttl)
    tokens.set(token, expiresAt.getTime())
    issued++
    return { token, issuedAt, expiresAt }
  }
  const userOk = (name: string, password: string, project: string): boolean =>
    (options.users ?? []).some((u) => u.username === name && u.password === password && u.project === project)

  const keystone = (req: SimRequest): SimResponse | undefined => {
    if (req.method === 'POST' && req.path === '/v2.0/tokens') {
      const d = K.V2PasswordAuth.decode(req.body)
      if (E.isLeft(d)) return text(400, 'Expecting auth')
      const a = d.right.auth
      if (!userOk(a.passwordCredentials.username, a.passwordCredentials.password, a.tenantName)) {
        return text(401, 'The request you have made requires authentication.')
      }
      const t = issue()
      const body: K.V2TokenResponse = {
        access: { token: { id: t.token, issued_at: t.issuedAt.toISOString(), expires: t.expiresAt.toISOString(), tenant: { name: a.tenantName } } }
      }
      return json(200, K.V2TokenResponse.encode(body))
    }
    if (req.method === 'POST' && req.path === '/v3/auth/tokens') {
      const d = K.V3PasswordAuth.decode(req.body)
      if (E.isLeft(d)) return text(400, 'Expecting auth')
      const id = d.right.auth.identity
      if (!id.methods.includes('password') || !userOk(id.password.user.name, id.password.user.password, d.right.auth.scope.project.name)) {
        return text(401, 'The request you have made requires authentication.')
      }
      const t = issue()
      const body: K.V3TokenResponse = { token: { issued_at: t.issuedAt.toISOString(), expires_at: t.expiresAt.toISOString() } }
      return { status: 201, json: K.V3TokenResponse.encode(body), headers: { 'X-Subject-Token': t.token } }
    }
    return undefined
  }

  const authorised = (req: SimRequest): boolean => {
    if (options.auth !== 'keystone') return true
    const tok = req.headers[K.AUTH_TOKEN]
    const exp = typeof tok === 'string' ? tokens.get(tok) : undefined
    return exp !== undefined && exp > Date.now()
  }

  // ---------------------------------------------------------------------------------
  // routes
  // ---------------------------------------------------------------------------------

  const handle = (req: SimRequest): SimResponse => {
    const ks = keystone(req)
    if (ks !== undefined) return ks
    if (!authorised(req)) return text(401, 'Authentication required')
    if (req.method === 'POST' && req.path === '/fqname-to-id') {
      const d = Obj.FqNameToIdRequest.decode(req.body)
      if (E.isLeft(d)) return text(400, 'Bad Request')
      const uuid = byName.get(key(d.right.type, d.right.fq_name))
      return uuid === undefined ? text(404, `Name ${JSON.stringify(d.right.fq_name)} not found`) : json(200, { uuid })
    }
    if (req.method === 'POST' && req.path === '/id-to-fqname') {
      const d = Obj.IdToFqNameRequest.decode(req.body)
      const o = E.isRight(d) ? objects.get(d.right.uuid) : undefined
      return o === undefined ? text(404, 'UUID not found') : json(200, { fq_name: o.fq_name, type: o.type })
    }
    if (req.method === 'POST' && req.path === '/ref-update') {
      const d = Obj.RefUpdateRequest.decode(req.body)
      if (E.isLeft(d)) return text(400, 'Bad Request')
      const r = d.right
      const o = objects.get(r.uuid)
      if (o === undefined || o.type !== r.type) return text(404, `No ${r.type} object found for id ${r.uuid}`)
      const field = `${underscored(r['ref-type'])}_refs`
      const refs = refsOf(o, field).filter((x) => x.uuid !== r['ref-uuid'])
      if (r.operation === 'ADD') {
        const target = objects.get(r['ref-uuid'])
        if (target === undefined || target.type !== r['ref-type']) return text(404, `No ${r['ref-type']} object found for id ${r['ref-uuid']}`)
        refs.push({ to: [...target.fq_name], uuid: target.uuid, ...(r.attr === null || r.attr === undefined ? {} : { attr: r.attr }) })
      }
      o.props[field] = refs
      return json(200, { uuid: o.uuid })
    }
    const list = /^\/([a-z-]+)s$/.exec(req.path)
    if (list !== null && TYPES.has(list[1]!)) {
      const type = list[1]!
      if (req.method === 'POST') return create(type, req.body)
      if (req.method === 'GET') {
        const parent = req.query.get('parent_id')
        const all = [...objects.values()].filter((o) => o.type === type && (parent === null || o.parent_uuid === parent))
        const detail = req.query.get('detail') === 'true'
        return json(200, { [`${type}s`]: all.map((o) => (detail ? { [type]: render(o, req.query) } : { href: href(type, o.uuid), fq_name: o.fq_name, uuid: o.uuid })) })
      }
    }
    const one = /^\/([a-z-]+)\/([^/]+)$/.exec(req.path)
    if (one !== null && TYPES.has(one[1]!)) {
      const [, type, uuid] = one as unknown as [string, string, string]
      const o = objects.get(uuid)
      if (req.method === 'DELETE') return remove(type, uuid)
      if (o === undefined || o.type !== type) return text(404, `No ${type} object found for id ${uuid}`)
      if (req.method === 'GET') return json(200, { [type]: render(o, req.query) })
      if (req.method === 'PUT') {
        const p = (req.body as Record<string, Record<string, unknown>> | undefined)?.[type] ?? {}
        if (type === 'instance-ip' && p['instance_ip_address'] !== undefined && p['instance_ip_address'] !== o.props['instance_ip_address']) {
          return text(400, 'Instance IP Address can not be changed')
        }
        const next = { ...p }
        delete next['fq_name']
        delete next['uuid']
        const refs = resolveRefs(next)
        if (E.isLeft(refs)) return refs.left
        o.props = { ...o.props, ...next }
        return json(200, { [type]: { uuid: o.uuid, href: href(type, o.uuid) } })
      }
    }
    return text(404, 'Not Found')
  }

  const sim = await startHttpSim(handle)
  base = sim.url
  const must = (r: SimResponse): string => {
    if (r.status !== 200) throw new Error(`seed failed: ${r.text ?? JSON.stringify(r.json)}`)
    const env = r.json as Record<string, { uuid: string }>
    return Object.values(env)[0]!.uuid
  }
  const uuidOf = (type: string, fq: ReadonlyArray<string>): string | undefined => byName.get(key(type, fq))
  const seedOnce = (type: string, body: Record<string, unknown>): string =>
    uuidOf(type, body['fq_name'] as string[]) ?? must(create(type, { [type]: body }, true))

  seedOnce('domain', { fq_name: ['default-domain'] })
  seedOnce('project', { fq_name: ['default-domain', 'default-project'], parent_type: 'domain' })
  seedOnce('network-ipam', {
    fq_name: ['default-domain', 'default-project', 'default-network-ipam'],
    parent_type: 'project',
    network_ipam_mgmt: { ipam_dns_method: 'default-dns-server' }
  })

  return {
    ...sim,
    keystoneV2: `${sim.url}/v2.0`,
    keystoneV3: `${sim.url}/v3`,
    seedProject: (tenant, domain = 'default-domain') => seedOnce('project', { fq_name: [domain, tenant], parent_type: 'domain' }),
    seedSecurityGroup: (tenant, name = 'default') =>
      seedOnce('security-group', { fq_name: ['default-domain', tenant, name], parent_type: 'project' }),
    seedNetwork: (tenant, name, subnets) =>
      seedOnce('virtual-network', {
        fq_name: ['default-domain', tenant, name],
        parent_type: 'project',
        network_ipam_refs: [
          {
            to: ['default-domain', 'default-project', 'default-network-ipam'],
            attr: {
              ipam_subnets: subnets.map((s) => {
                const [p, len] = s.cidr.split('/')
                return { subnet: { ip_prefix: p, ip_prefix_len: Number(len) }, addr_from_start: s.addrFromStart ?? true, enable_dhcp: true }
              })
            }
          }
        ]
      }),
    objects: (type) => [...objects.values()].filter((o) => type === undefined || o.type === type),
    get: (uuid) => objects.get(uuid),
    created: () => [...objects.values()].filter((o) => !seeds.has(o.uuid)),
    expireTokens: () => {
      for (const k of tokens.keys()) tokens.set(k, 0)
    },
    tokensIssued: () => issued
  }
}
