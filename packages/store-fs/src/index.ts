/**
 * @isthmus/store-fs: the default Store, one JSON file per record under a state directory
 * (`/var/lib/isthmus` unless told otherwise), safe for a daemon and many CNI processes at once.
 */
export { fileStore, settingsOf, type FileStoreOptions, type FileStoreSettings } from './fileStore.js'
export { LAYOUT_DIR, layout, isRecordName, isTempName, type Layout } from './layout.js'
export {
  SCHEMA_VERSION,
  Cursor,
  Envelope,
  EnvelopeHeader,
  decodeEnvelope,
  encodeEnvelope,
  storableEnvelope,
  type RecordKind
} from './envelope.js'
export { QuarantineEntry } from './quarantine.js'
export { encodeName, decodeName } from './names.js'
export { hasStore, purgeStateDir, type Purged } from './purge.js'
