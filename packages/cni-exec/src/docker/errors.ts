/**
 * Docker Engine API errors as CNI errors. No answer is "try again later" (11: dockerd restarts,
 * its socket appears late at boot); a refusal is 105 with Docker's own message in `details`;
 * a 404 means what the caller says it means (an unknown container is 3, an unknown network 7).
 */
import { Code, cniError, type CniError } from '../protocol/Error.js'
import { describeDockerError, isNoSuch, type DockerError } from '@isthmus/core'

/** @category utils */
export const dockerToCni = (e: DockerError, onNoSuch?: CniError): CniError => {
  if (onNoSuch !== undefined && isNoSuch(e)) return { ...onNoSuch, details: describeDockerError(e) }
  switch (e._tag) {
    case 'Unreachable':
      return cniError(Code.TryAgainLater, 'docker engine unreachable', describeDockerError(e))
    case 'Refused':
      return cniError(Code.DockerRefused, 'docker engine refused the request', describeDockerError(e))
    case 'BadAnswer':
      return cniError(Code.DockerRefused, 'unexpected answer from the docker engine', describeDockerError(e))
  }
}

/** @category constants */
export const NO_SUCH_CONTAINER = cniError(Code.UnknownContainer, 'docker container not found')
/** @category constants */
export const NO_SUCH_NETWORK = cniError(Code.InvalidConfig, 'docker network not found')
