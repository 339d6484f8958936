export { Policy, UNPARSED_RULE, WEBSOCKET_RULE, LOAD_DATA_LOCAL_RULE, METHOD_OVERRIDE_RULE, type PolicyContext, type PolicyOptions } from './policy.js';
export { compileGlob, globProblem, GlobSet, type GlobOptions, type GlobSeparator } from './glob.js';
export { commandLines } from './rule.js';
export { methodOverride, METHOD_OVERRIDE_HEADERS, type MethodOverride } from './http-method.js';
