/** Unique names for the objects a test run creates, so cleanup can find exactly its own. */
import { randomBytes } from 'node:crypto'

/** A prefix such as `ist-3f9a1c`: short, because bridge and link names are at most 15 characters. */
export const uniquePrefix = (base = 'ist'): string => `${base}-${randomBytes(3).toString('hex')}`
