/**
 * A Contrail VNC config API with keystone, as a real HTTP server on 127.0.0.1
 * (docs/contrail.md, "The config API on the wire"): objects with refs, back-refs and children
 * (`simObjects.ts`); server-computed uuids, MACs, subnet gateways and instance-ip addresses
 * (`simAddresses.ts`); the 400/401/404/409 answers of the API server with their texts; keystone v2
 * and v3 token issue with controllable expiry (`simKeystone.ts`); failure injection and a journal
 * (`httpSim.ts`).
 */
import { randomUUID } from 'node:crypto'
import * as E from 'fp-ts/lib/Either.js'
import * as Obj from '../config/Objects.js'
import { startHttpSim, type HttpSim, type SimRequest, type SimResponse } from './httpSim.js'
import { assignAddress, fillSubnets, macFromUuid } from './simAddresses.js'
import { keystoneSim, type KeystoneUser } from './simKeystone.js'
import { json, objectStore, refsOf, text, underscored, type ObjectStore, type SimObject } from './simObjects.js'

export { macFromUuid } from './simAddresses.js'
export type { KeystoneUser } from './simKeystone.js'
export type { SimObject } from './simObjects.js'

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

// ---------------------------------------------------------------------------------------
// create / delete
// ---------------------------------------------------------------------------------------

/** A copy of `o` without the identity keys a body may carry. */
const without = (o: Record<string, unknown>, keys: ReadonlyArray<string>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)))

/** What the server computes at create: subnets of a network, an interface's MAC, an address. */
const compute = (
  store: ObjectStore,
  type: string,
  uuid: string,
  props: Record<string, unknown>
): E.Either<SimResponse, void> => {
  if (type === 'virtual-network') return fillSubnets(props)
  if (type === 'virtual-machine-interface' && props['virtual_machine_interface_mac_addresses'] === undefined) {
    props['virtual_machine_interface_mac_addresses'] = { mac_address: [macFromUuid(uuid)] }
  }
  return type === 'instance-ip' ? assignAddress(store, props) : E.right(undefined)
}

/** The parent's uuid, when the type has a parent (the fq_name minus its last element). */
const parentOf = (store: ObjectStore, type: string, fq: string[]): E.Either<SimResponse, string | undefined> => {
  const parentType = PARENT[type]
  if (parentType === undefined) return E.right(undefined)
  const uuid = store.uuidOf(parentType, fq.slice(0, -1))
  return uuid === undefined
    ? E.left(text(400, `Parent ${JSON.stringify(fq.slice(0, -1))} type ${parentType} does not exist`))
    : E.right(uuid)
}

/** `POST /<type>s`: the object stored, or the server's refusal. */
const create = (store: ObjectStore, type: string, raw: unknown): E.Either<SimResponse, SimObject> => {
  const o = (raw as Record<string, unknown> | undefined)?.[type] as Record<string, unknown> | undefined
  if (o === undefined || typeof o !== 'object') return E.left(text(400, `Bad Request: no ${type} in body`))
  const fq = o['fq_name']
  if (!Array.isArray(fq) || fq.length === 0 || !fq.every((x) => typeof x === 'string')) {
    return E.left(text(400, 'Bad Request: fq_name'))
  }
  const exists = store.uuidOf(type, fq)
  if (exists !== undefined) return E.left(text(409, `FQ Name: ${JSON.stringify(fq)} exists already with ID: ${exists}`))
  const parent = parentOf(store, type, fq)
  if (E.isLeft(parent)) return parent
  const props = without(o, ['fq_name', 'uuid', 'parent_type'])
  const refs = store.resolveRefs(props)
  if (E.isLeft(refs)) return refs
  const uuid = typeof o['uuid'] === 'string' ? o['uuid'] : randomUUID()
  const computed = compute(store, type, uuid, props)
  if (E.isLeft(computed)) return computed
  const parentType = PARENT[type]
  const obj: SimObject = {
    type,
    uuid,
    fq_name: [...fq],
    ...(parentType === undefined ? {} : { parent_type: parentType, parent_uuid: parent.right! }),
    props
  }
  store.put(obj)
  return E.right(obj)
}

/** The short envelope a create answers with. */
const createdAnswer = (store: ObjectStore, obj: SimObject): SimResponse =>
  json(200, {
    [obj.type]: {
      name: obj.fq_name[obj.fq_name.length - 1],
      fq_name: obj.fq_name,
      uuid: obj.uuid,
      href: store.href(obj.type, obj.uuid),
      ...(obj.parent_type === undefined
        ? {}
        : {
            parent_type: obj.parent_type,
            parent_uuid: obj.parent_uuid,
            parent_href: store.href(obj.parent_type, obj.parent_uuid!)
          })
    }
  })

/** `DELETE /<type>/<uuid>`: refused while children exist or another object refers to it. */
const remove = (store: ObjectStore, type: string, uuid: string): SimResponse => {
  const o = store.get(uuid)
  if (o?.type !== type) return text(404, `No ${type} object found for id ${uuid}`)
  const kids = store.children(o)
  if (kids.length > 0) {
    return text(
      409,
      `Delete when children still present: ${JSON.stringify(kids.map((k) => store.href(k.type, k.uuid)))}`
    )
  }
  const referrers = Object.values(store.backRefs(o)).flat()
  if (referrers.length > 0) {
    return text(409, `Delete when resource still referred: ${JSON.stringify(referrers.map((r) => r.href))}`)
  }
  store.delete(o)
  return json(200, {})
}

// ---------------------------------------------------------------------------------------
// routes
// ---------------------------------------------------------------------------------------

const refUpdate = (store: ObjectStore, body: unknown): SimResponse => {
  const d = Obj.RefUpdateRequest.decode(body)
  if (E.isLeft(d)) return text(400, 'Bad Request')
  const r = d.right
  const o = store.get(r.uuid)
  if (o?.type !== r.type) return text(404, `No ${r.type} object found for id ${r.uuid}`)
  const field = `${underscored(r['ref-type'])}_refs`
  const refs = refsOf(o, field).filter((x) => x.uuid !== r['ref-uuid'])
  if (r.operation === 'ADD') {
    const target = store.get(r['ref-uuid'])
    if (target?.type !== r['ref-type']) {
      return text(404, `No ${r['ref-type']} object found for id ${r['ref-uuid']}`)
    }
    refs.push({
      to: [...target.fq_name],
      uuid: target.uuid,
      ...(r.attr === null || r.attr === undefined ? {} : { attr: r.attr })
    })
  }
  o.props[field] = refs
  return json(200, { uuid: o.uuid })
}

/** The calls that are not about one type: name lookups and reference updates. */
const lookups = (store: ObjectStore, req: SimRequest): SimResponse | undefined => {
  if (req.method !== 'POST') return undefined
  if (req.path === '/fqname-to-id') {
    const d = Obj.FqNameToIdRequest.decode(req.body)
    if (E.isLeft(d)) return text(400, 'Bad Request')
    const uuid = store.uuidOf(d.right.type, d.right.fq_name)
    return uuid === undefined ? text(404, `Name ${JSON.stringify(d.right.fq_name)} not found`) : json(200, { uuid })
  }
  if (req.path === '/id-to-fqname') {
    const d = Obj.IdToFqNameRequest.decode(req.body)
    const o = E.isRight(d) ? store.get(d.right.uuid) : undefined
    return o === undefined ? text(404, 'UUID not found') : json(200, { fq_name: o.fq_name, type: o.type })
  }
  return req.path === '/ref-update' ? refUpdate(store, req.body) : undefined
}

/** `POST /<type>s` and `GET /<type>s[?detail=true][&parent_id=…]`. */
const collection = (store: ObjectStore, req: SimRequest, type: string): SimResponse | undefined => {
  if (req.method === 'POST') {
    return E.match(
      (refused: SimResponse) => refused,
      (o: SimObject) => createdAnswer(store, o)
    )(create(store, type, req.body))
  }
  if (req.method !== 'GET') return undefined
  const parent = req.query.get('parent_id')
  const all = [...store.all()].filter((o) => o.type === type && (parent === null || o.parent_uuid === parent))
  const detail = req.query.get('detail') === 'true'
  const entry = (o: SimObject) =>
    detail
      ? { [type]: store.render(o, req.query) }
      : { href: store.href(type, o.uuid), fq_name: o.fq_name, uuid: o.uuid }
  return json(200, { [`${type}s`]: all.map(entry) })
}

/** `PUT /<type>/<uuid>`: properties and refs merged; an instance-ip's address cannot change. */
const update = (store: ObjectStore, o: SimObject, body: unknown): SimResponse => {
  const p = (body as Record<string, Record<string, unknown>> | undefined)?.[o.type] ?? {}
  if (
    o.type === 'instance-ip' &&
    p['instance_ip_address'] !== undefined &&
    p['instance_ip_address'] !== o.props['instance_ip_address']
  ) {
    return text(400, 'Instance IP Address can not be changed')
  }
  const next = without(p, ['fq_name', 'uuid'])
  const refs = store.resolveRefs(next)
  if (E.isLeft(refs)) return refs.left
  o.props = { ...o.props, ...next }
  return json(200, { [o.type]: { uuid: o.uuid, href: store.href(o.type, o.uuid) } })
}

/** `GET`, `PUT` and `DELETE /<type>/<uuid>`. */
const one = (store: ObjectStore, req: SimRequest, type: string, uuid: string): SimResponse | undefined => {
  if (req.method === 'DELETE') return remove(store, type, uuid)
  const o = store.get(uuid)
  if (o?.type !== type) return text(404, `No ${type} object found for id ${uuid}`)
  if (req.method === 'GET') return json(200, { [type]: store.render(o, req.query) })
  return req.method === 'PUT' ? update(store, o, req.body) : undefined
}

const api = (store: ObjectStore, req: SimRequest): SimResponse => {
  const special = lookups(store, req)
  if (special !== undefined) return special
  const list = /^\/([a-z-]+)s$/.exec(req.path)
  const many = list !== null && TYPES.has(list[1]!) ? collection(store, req, list[1]!) : undefined
  if (many !== undefined) return many
  const single = /^\/([a-z-]+)\/([^/]+)$/.exec(req.path)
  const answer = single !== null && TYPES.has(single[1]!) ? one(store, req, single[1]!, single[2]!) : undefined
  return answer ?? text(404, 'Not Found')
}

// ---------------------------------------------------------------------------------------
// the simulator
// ---------------------------------------------------------------------------------------

/** @category testing */
export const startContrailSimulator = async (options: ContrailSimulatorOptions = {}): Promise<ContrailSimulator> => {
  let base = ''
  const store = objectStore(() => base)
  const seeds = new Set<string>()
  const keystone = keystoneSim(options.users ?? [], options.tokenTtlMs ?? 3_600_000)
  const handle = (req: SimRequest): SimResponse => {
    const ks = keystone.handle(req)
    if (ks !== undefined) return ks
    if (options.auth === 'keystone' && !keystone.valid(req)) return text(401, 'Authentication required')
    const r = api(store, req)
    // a seed a client deleted is gone for good (a later object may take its uuid)
    if (req.method === 'DELETE' && r.status === 200) {
      for (const u of seeds) if (store.get(u) === undefined) seeds.delete(u)
    }
    return r
  }
  const sim = await startHttpSim(handle)
  base = sim.url
  const seedOnce = (type: string, body: Record<string, unknown>): string => {
    const known = store.uuidOf(type, body['fq_name'] as string[])
    if (known !== undefined) return known
    const made = create(store, type, { [type]: body })
    if (E.isLeft(made)) throw new Error(`seed failed: ${made.left.text ?? JSON.stringify(made.left.json)}`)
    seeds.add(made.right.uuid)
    return made.right.uuid
  }
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
    seedProject: (tenant, domain = 'default-domain') =>
      seedOnce('project', { fq_name: [domain, tenant], parent_type: 'domain' }),
    seedSecurityGroup: (tenant, name = 'default') =>
      seedOnce('security-group', { fq_name: ['default-domain', tenant, name], parent_type: 'project' }),
    seedNetwork: (tenant, name, subnets) => seedOnce('virtual-network', networkSeed(tenant, name, subnets)),
    objects: (type) => [...store.all()].filter((o) => type === undefined || o.type === type),
    get: (uuid) => store.get(uuid),
    created: () => [...store.all()].filter((o) => !seeds.has(o.uuid)),
    expireTokens: keystone.expireAll,
    tokensIssued: keystone.issued
  }
}

/** A virtual network as an operator makes it: ipam subnets on the default IPAM. */
const networkSeed = (tenant: string, name: string, subnets: ReadonlyArray<SeededSubnet>): Record<string, unknown> => ({
  fq_name: ['default-domain', tenant, name],
  parent_type: 'project',
  network_ipam_refs: [
    {
      to: ['default-domain', 'default-project', 'default-network-ipam'],
      attr: {
        ipam_subnets: subnets.map((s) => {
          const [p, len] = s.cidr.split('/')
          return {
            subnet: { ip_prefix: p, ip_prefix_len: Number(len) },
            addr_from_start: s.addrFromStart ?? true,
            enable_dhcp: true
          }
        })
      }
    }
  ]
})
