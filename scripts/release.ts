/** `npm run --silent release`: the release the working tree builds, as NAME=value lines for `export $(…)`. */
import { buildEnv } from './lib/release.js';

for (const [name, value] of Object.entries(await buildEnv())) console.log(`${name}=${value}`);
