/**
 * Keystone token requests and responses, v2.0 and v3, as on the wire (docs/contrail.md,
 * "Keystone"; https://docs.openstack.org/api-ref/identity/v3/). The only definitions of these
 * shapes: the client encodes requests and decodes responses with them, and the simulator decodes
 * requests and encodes responses with them.
 */
import * as t from 'io-ts'

// -------------------------------------------------------------------------------------
// v2.0: POST <auth_url>/tokens
// -------------------------------------------------------------------------------------

/** @category codecs */
export const V2PasswordAuth = t.type(
  {
    auth: t.type({
      tenantName: t.string,
      passwordCredentials: t.type({ username: t.string, password: t.string })
    })
  },
  'V2PasswordAuth'
)
/** @category model */
export type V2PasswordAuth = t.TypeOf<typeof V2PasswordAuth>

/** @category codecs */
export const V2TokenResponse = t.type(
  {
    access: t.type({
      token: t.intersection([
        t.type({ id: t.string }),
        t.partial({ expires: t.string, issued_at: t.string, tenant: t.partial({ id: t.string, name: t.string }) })
      ])
    })
  },
  'V2TokenResponse'
)
/** @category model */
export type V2TokenResponse = t.TypeOf<typeof V2TokenResponse>

// -------------------------------------------------------------------------------------
// v3: POST <auth_url>/auth/tokens; the token is the X-Subject-Token response header
// -------------------------------------------------------------------------------------

const DomainRef = t.union([t.type({ id: t.string }), t.type({ name: t.string })], 'DomainRef')

/** @category codecs */
export const V3PasswordAuth = t.type(
  {
    auth: t.type({
      identity: t.type({
        methods: t.array(t.string),
        password: t.type({ user: t.type({ name: t.string, domain: DomainRef, password: t.string }) })
      }),
      scope: t.type({ project: t.type({ name: t.string, domain: DomainRef }) })
    })
  },
  'V3PasswordAuth'
)
/** @category model */
export type V3PasswordAuth = t.TypeOf<typeof V3PasswordAuth>

/** @category codecs */
export const V3TokenResponse = t.type(
  { token: t.intersection([t.type({ expires_at: t.string }), t.partial({ issued_at: t.string })]) },
  'V3TokenResponse'
)
/** @category model */
export type V3TokenResponse = t.TypeOf<typeof V3TokenResponse>

/** The v3 response header carrying the token. @category constants */
export const SUBJECT_TOKEN = 'x-subject-token'
/** The request header every config API call carries. @category constants */
export const AUTH_TOKEN = 'x-auth-token'
