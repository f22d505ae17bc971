/**
 * Global setup of the stack suite: makes sure Docker runs and the base images exist (building them
 * offline when no registry answers), then hands the Compose command to the tests.
 * Under CI=true a missing Docker fails the run; elsewhere the suite skips, and says so loudly.
 */
import type { TestProject } from 'vitest/node';
import { composeCommand, dockerWorks, dotEnv, imageExists, run, runLoud } from './docker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why the stack suite cannot run here, or '' when it can. */
    stackSkipReason: string;
    compose: string[];
  }
}

const OFFICIAL_BASE_IMAGES = { NODE_IMAGE: 'node:24-bookworm-slim', NGINX_IMAGE: 'nginx:1.30' };

/** True when every base image Compose will use is present locally or can be pulled. */
async function baseImagesAvailable(): Promise<boolean> {
  const chosen = { ...OFFICIAL_BASE_IMAGES, ...dotEnv() };
  for (const image of [chosen.NODE_IMAGE, chosen.NGINX_IMAGE]) {
    if (await imageExists(image)) continue;
    console.log(`[stack] pulling ${image} …`);
    if ((await run('docker', ['pull', image], { timeoutMs: 300_000 })).code !== 0) return false;
  }
  return true;
}

export default async function setup(project: TestProject): Promise<void> {
  project.provide('compose', []);
  if (!(await dockerWorks())) {
    const reason = 'no Docker engine is reachable (`docker info` failed)';
    if (process.env.CI === 'true') throw new Error(`The stack suite cannot run under CI=true: ${reason}`);
    console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING the stack suite: ${reason}.\n!! Start Docker to run it.\n${'!'.repeat(72)}\n`);
    project.provide('stackSkipReason', reason);
    return;
  }
  if (!(await baseImagesAvailable())) {
    console.log('[stack] no registry answers: building the base images offline (npm run images:offline)');
    await runLoud('bash', ['scripts/images-offline.sh']);
  }
  project.provide('compose', await composeCommand());
  project.provide('stackSkipReason', '');
}
