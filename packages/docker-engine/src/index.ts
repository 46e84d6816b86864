/**
 * @isthmus/docker-engine: the Docker Engine API client behind core's DockerClient port (the port,
 * its errors and the answer codecs are core's: ports/DockerEngine.ts).
 */
export { dockerClient, DEFAULT_DOCKER_SOCKET, DEFAULT_DOCKER_TIMEOUT_MS } from './client.js'
