/**
 * Global setup of the stack suite: makes sure Docker runs and the base images exist (building them
 * offline when no registry answers), and that the Compose v2 plugin is there.
 * Under CI=true a missing Docker fails the run; elsewhere the suite skips, and says so loudly.
 */
import type { TestProject } from 'vitest/node';
import { dockerWorks, prepareDocker } from '../scripts/lib/stack.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why the stack suite cannot run here, or '' when it can. */
    stackSkipReason: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  if (!(await dockerWorks())) {
    const reason = 'no Docker engine is reachable (`docker info` failed)';
    if (process.env.CI === 'true') throw new Error(`The stack suite cannot run under CI=true: ${reason}`);
    console.warn(
      `\n${'!'.repeat(72)}\n!! SKIPPING the stack suite: ${reason}.\n!! Start Docker to run it.\n${'!'.repeat(72)}\n`,
    );
    project.provide('stackSkipReason', reason);
    return;
  }
  await prepareDocker('stack');
  project.provide('stackSkipReason', '');
}
