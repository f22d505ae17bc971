/** The stack suite's Compose project: the scripts' Stack, plus what only the tests ask of it. */
import { Stack, run } from '../scripts/lib/stack.js';

export class TestStack extends Stack {
  async inspect<T = unknown>(id: string, format: string): Promise<T> {
    const { stdout, code, stderr } = await run('docker', ['inspect', '--format', `{{json ${format}}}`, id]);
    if (code !== 0) throw new Error(`docker inspect ${id}: ${stderr}`);
    return JSON.parse(stdout) as T;
  }

  /** Sets the number of back-end replicas without touching the other services. */
  async scaleBackEnd(replicas: number): Promise<void> {
    await this.execLoud(['up', '--detach', '--no-recreate', '--scale', `back-end=${replicas}`]);
  }
}
