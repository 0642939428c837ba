/** Public exports for embedding Gatehouse or driving it from tests. No side effects. */
export { buildServer } from './server.js'
export { createContext, type AppContext, type ContextOptions } from './context.js'
export { loadConfig, ConfigError, type Config, type Secrets } from './config.js'
export { systemClock, type Clock } from './clock.js'
export { XrpcError, InvalidRequestError, AuthRequiredError, ForbiddenError } from './errors.js'
export { VERSION } from './version.js'
