/** The names of Contrail host networks in HNS: the driver's convention and its escaping. */
import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { escapeField, hostNetworkName, parseHostNetworkName, unescapeField } from '@isthmus/contrail'

describe('host network names: Contrail:<tenant>:<network>:<subnet>', () => {
  it('are the Go driver’s names when no field holds : or %', () => {
    assert.equal(
      hostNetworkName({ tenant: 'demo', network: 'blue', subnet: '10.0.0.0/24' }),
      'Contrail:demo:blue:10.0.0.0/24'
    )
  })

  it('escape : and % so a name always has four fields', () => {
    const name = hostNetworkName({ tenant: 'a:b', network: '50%', subnet: 'fd00::/64' })
    assert.equal(name, 'Contrail:a%3Ab:50%25:fd00%3A%3A/64')
    assert.deepEqual(parseHostNetworkName(name), { tenant: 'a:b', network: '50%', subnet: 'fd00::/64' })
  })

  it('round-trip any fields (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (tenant, network, subnet) => {
        const name = hostNetworkName({ tenant, network, subnet })
        assert.equal(name.split(':').length, 4)
        assert.deepEqual(parseHostNetworkName(name), { tenant, network, subnet })
      }),
      { numRuns: 500 }
    )
    fc.assert(fc.property(fc.string(), (s) => unescapeField(escapeField(s)) === s))
  })

  it('refuse names isthmus did not make instead of failing on them', () => {
    for (const bad of ['Contrail:a:b', 'Contrail:a:b:c:d', 'Other:a:b:c', 'Contrail:a%zz:b:c', 'ContrailRootNetwork']) {
      assert.equal(parseHostNetworkName(bad), undefined, bad)
    }
  })
})
