/**
 * The OpenStack client variables that a controller login (keystone) may read from a process's
 * environment: a frontend carries exactly these to the adapter that logs in, and nothing else of
 * the environment.
 */

/** The variables, in the order a "missing" message names them. @category constants */
export const OS_CREDENTIAL_KEYS = [
  'OS_USERNAME',
  'OS_PASSWORD',
  'OS_PROJECT_NAME',
  'OS_TENANT_NAME',
  'OS_USER_DOMAIN_NAME',
  'OS_PROJECT_DOMAIN_NAME'
] as const

/**
 * Only the credential variables of an environment (a plugin's holds much else), the empty ones dropped.
 *
 * @category utils
 */
export const credentialVars = (env: Readonly<Record<string, string | undefined>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const k of OS_CREDENTIAL_KEYS) {
    const v = env[k]
    if (v !== undefined && v !== '') out[k] = v
  }
  return out
}
