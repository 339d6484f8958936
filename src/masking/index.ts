/**
 * Masking: column rules by provenance and lineage, content detectors, masking methods.
 * Pure functions; the protocol adapters call them on cells, output chunks and bodies.
 */
export { DETECTORS, detect, isDetectorName, type DetectorName, type Finding } from './detectors.js';
export { REDACTED, METHOD_STRENGTH, keyFromSecret, maskString, strongest, type MaskOptions } from './methods.js';
export { DetectorRules, maskText } from './text.js';
export { maskValue, maskValueByDetectors, typeFamily, type ColumnType, type TypeFamily } from './values.js';
export { ColumnMasker, judgeOutput } from './columns.js';
export { StreamMasker, type StreamMaskerOptions } from './stream.js';
export { CATALOG_VALUE_COLUMNS, CATALOG_VALUES_RULE, CATALOG_VALUES_RULE_NAME } from './catalog-values.js';
export { DETAILS_WITHHELD, MYSQL_SAFE_TEMPLATES, PG_SAFE_TEMPLATES, safeMessage, readsMaskedData, sqlstateText, withheldMessage, type SafeTemplate } from './errors.js';
