// The image's HEALTHCHECK: node alone, since the runtime image has no curl.
import { loadConfig } from './config.js';

const { port } = loadConfig();
try {
  const response = await fetch(`http://127.0.0.1:${port}/api/health`, { signal: AbortSignal.timeout(2000) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
