import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import {
  AddressSpace,
  Cidr,
  ContainerId,
  Endpoint,
  EndpointId,
  IfName,
  IpAddress,
  Lease,
  LeaseOwner,
  MacAddress,
  Network,
  NetworkId,
  Pool,
  PoolId,
  SandboxKey,
  Subnet,
  decodeWith,
  type CoreError
} from '@isthmus/core'

// One valid record per model codec: the fixtures every bad-input case below is derived from.
const fixtures: ReadonlyArray<readonly [t.Mixed, Record<string, unknown>]> = [
  [
    Network,
    {
      id: 'net1',
      name: 'blue',
      addressSpace: 'isthmus-local',
      ipv4: [{ subnet: '10.1.0.0/24', poolId: 'isthmus-local/10.1.0.0/24', gateway: '10.1.0.1' }],
      ipv6: [{ subnet: 'fd00:1::/64' }],
      internal: false,
      ipMasquerade: true,
      options: { 'com.docker.network.mtu': '1400' },
      createdAt: '2026-11-23T00:00:00.000Z',
      mtu: 1400,
      bridge: 'isthmus0',
      controller: { tenant: 'demo', network: 'blue' }
    }
  ],
  [
    Endpoint,
    {
      id: 'ep1',
      networkId: 'net1',
      owner: { kind: 'container', containerId: 'c1', ifName: 'eth0' },
      addresses: [{ cidr: '10.1.0.2/24', gateway: '10.1.0.1' }],
      hostIfName: 'istv0123456789a',
      peerIfName: 'istc0123456789a',
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
      portMappings: [{ protocol: 'tcp', containerPort: 80, hostPort: 8080 }],
      createdAt: '2026-11-23T00:00:00.000Z',
      mac: '02:42:0a:01:00:02',
      sandbox: '/var/run/netns/x',
      sandboxIfName: 'eth0'
    }
  ],
  [
    Pool,
    {
      id: 'isthmus-local/10.1.0.0/24',
      addressSpace: 'isthmus-local',
      subnet: '10.1.0.0/24',
      family: 4,
      ranges: [{ start: '10.1.0.10', end: '10.1.0.20' }],
      reserved: [{ address: '10.1.0.5', reason: 'aux', name: 'host1' }],
      options: {},
      refs: 1,
      gateway: '10.1.0.1'
    }
  ],
  [
    Lease,
    {
      address: '10.1.0.2',
      addressSpace: 'isthmus-local',
      poolId: 'isthmus-local/10.1.0.0/24',
      owner: { kind: 'endpoint', id: 'ep1' },
      since: '2026-11-23T00:00:00.000Z',
      mac: '02:42:0a:01:00:02'
    }
  ]
]

const wrongValueFor = (v: unknown): unknown =>
  typeof v === 'string' ? 42 : typeof v === 'number' || typeof v === 'boolean' ? 'x' : Array.isArray(v) ? 'x' : 7

const failure = (r: E.Either<CoreError, unknown>): ReadonlyArray<string> => {
  assert.ok(E.isLeft(r), 'expected a decode failure')
  assert.equal(r.left._tag, 'DecodeFailure')
  return r.left._tag === 'DecodeFailure' ? r.left.errors : []
}

describe('model codecs', () => {
  for (const [codec, valid] of fixtures) {
    it(`${codec.name}: decodes its fixture and encodes it back unchanged`, () => {
      const r = codec.decode(valid)
      assert.ok(E.isRight(r))
      assert.deepEqual(JSON.parse(JSON.stringify(codec.encode(r.right))), valid)
    })

    it(`${codec.name}: a wrong value in any field gives a DecodeFailure naming that field`, () => {
      for (const [field, value] of Object.entries(valid)) {
        const errors = failure(decodeWith(codec)({ ...valid, [field]: wrongValueFor(value) }))
        assert.ok(
          errors.some((e) => e.startsWith(`${field}:`) || e.startsWith(`${field}.`)),
          `${field} not named in ${JSON.stringify(errors)}`
        )
      }
    })

    it(`${codec.name}: a missing required field is named`, () => {
      const required = Object.keys(valid).filter((k) => E.isLeft(codec.decode({ ...valid, [k]: undefined })))
      assert.ok(required.length > 0)
      for (const field of required) {
        const { [field]: _dropped, ...rest } = valid
        assert.ok(failure(decodeWith(codec)(rest)).some((e) => e.startsWith(`${field}:`)))
      }
    })

    it(`${codec.name}: arbitrary input never throws and is either accepted or a DecodeFailure`, () => {
      fc.assert(
        fc.property(fc.anything({ withNullPrototype: true, withBigInt: true }), (input) => {
          const r = decodeWith(codec)(input)
          assert.ok(E.isRight(r) || r.left._tag === 'DecodeFailure')
        }),
        { numRuns: 300 }
      )
    })
  }

  it('names nested fields with their path', () => {
    const [, net] = fixtures[0]!
    const errors = failure(decodeWith(Network)({ ...net, ipv4: [{ subnet: '10.1.0.7/24' }] }))
    assert.deepEqual(errors, ['ipv4.0.subnet: expected a subnet without host bits (10.1.0.0/24), got "10.1.0.7/24"'])
  })

  it('reports a non-object where a record belongs in one line', () => {
    assert.deepEqual(failure(decodeWith(Network)(null)), ['(root): expected an object (Network), got null'])
  })
})

describe('address codecs', () => {
  const ok = <A>(c: t.Type<A, unknown>, input: unknown): A => {
    const r = c.decode(input)
    assert.ok(E.isRight(r), `${c.name} rejected ${JSON.stringify(input)}`)
    return r.right
  }
  const bad = (c: t.Decoder<unknown, unknown>, input: unknown) => assert.ok(E.isLeft(c.decode(input)))

  it('canonicalises addresses so one address has one spelling', () => {
    assert.equal(ok(IpAddress, 'FD00:0:0::0001'), 'fd00::1')
    assert.equal(ok(Cidr, 'FD00::0001/64'), 'fd00::1/64')
    assert.equal(ok(MacAddress, 'AA-BB-CC-DD-EE-0F'), 'aa:bb:cc:dd:ee:0f')
  })

  it('rejects the inet_aton spellings that ipaddr.isValid accepts', () => {
    for (const s of ['0x7f.1', '127.1', '010.0.0.1', '1.2.3.4.5', '256.0.0.1', ' 1.2.3.4', 'fe80::1%eth0']) {
      bad(IpAddress, s)
    }
  })

  it('tells a CIDR from a subnet', () => {
    ok(Cidr, '10.0.0.5/24')
    bad(Subnet, '10.0.0.5/24')
    ok(Subnet, '10.0.0.0/24')
    bad(Cidr, '10.0.0.0/33')
    bad(Cidr, 'fd00::/129')
    bad(Cidr, '10.0.0.0')
  })

  it('applies the CNI rules to names and ids', () => {
    bad(IfName, '')
    bad(IfName, 'a'.repeat(16))
    bad(IfName, 'eth 0')
    bad(IfName, '..')
    ok(IfName, 'eth0')
    bad(ContainerId, '_x')
    ok(ContainerId, 'a1_b.c-d')
    bad(SandboxKey, 'relative/path')
    bad(NetworkId, 'a/b')
    bad(EndpointId, '')
    bad(PoolId, '')
    bad(AddressSpace, 'has space')
    bad(LeaseOwner, { kind: 'endpoint' })
  })
})
