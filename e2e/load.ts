/**
 * A steady, bounded load from the host on loopback: a fixed request rate, a cap on requests in flight,
 * a hard stop. It records every status, every failure and which replica (X-Served-By) answered.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { run, type Stack } from '../scripts/lib/stack.js';

export interface LoadResult {
  sent: number;
  statuses: Record<string, number>;
  /** Requests that got no HTTP answer at all (reset, refused, timed out). */
  failures: number;
  failureSamples: string[];
  /** From the first failed request's start to the last one's end (0 without failures): how long a cut lasted. */
  failureWindowMs: number;
  servedBy: Record<string, number>;
  durationMs: number;
  /** The log lines that explain its 5xx answers, when the caller looked them up (visitorLoad). */
  why?: string;
}

export interface LoadOptions {
  ratePerSecond: number;
  /** Hard ceiling on the run, whatever happens. */
  maxDurationMs: number;
  maxInFlight?: number;
  requestTimeoutMs?: number;
  init?: (index: number) => RequestInit;
  /** Sends request `index` in place of a plain fetch of the URL, e.g. a page visit that also loads its assets. */
  send?: (index: number, signal: AbortSignal) => Promise<Response>;
  /** Called with each answer, e.g. to remember which writes were acknowledged. */
  onResponse?: (index: number, response: Response, body: string) => void;
}

export interface RunningLoad {
  /** Stops sending, waits for the requests in flight, and returns the tally. */
  stop(): Promise<LoadResult>;
}

export function startLoad(url: string, options: LoadOptions): RunningLoad {
  const { ratePerSecond, maxDurationMs, maxInFlight = 100, requestTimeoutMs = 10_000 } = options;
  const result: LoadResult = {
    sent: 0,
    statuses: {},
    failures: 0,
    failureSamples: [],
    failureWindowMs: 0,
    servedBy: {},
    durationMs: 0,
  };
  let firstFailureAt = Infinity;
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  let stopped = false;

  async function one(index: number): Promise<void> {
    const sentAt = Date.now();
    try {
      const signal = AbortSignal.timeout(requestTimeoutMs);
      const response = await (options.send?.(index, signal) ?? fetch(url, { ...options.init?.(index), signal }));
      const body = await response.text();
      result.statuses[response.status] = (result.statuses[response.status] ?? 0) + 1;
      const replica = response.headers.get('x-served-by');
      if (replica) result.servedBy[replica] = (result.servedBy[replica] ?? 0) + 1;
      options.onResponse?.(index, response, body);
    } catch (error) {
      result.failures += 1;
      firstFailureAt = Math.min(firstFailureAt, sentAt);
      result.failureWindowMs = Math.max(result.failureWindowMs, Date.now() - firstFailureAt);
      if (result.failureSamples.length < 5) result.failureSamples.push(String((error as Error).cause ?? error));
    }
  }

  // Ticks every 10 ms and sends what the rate owes by then, so a slow tick does not lower the rate.
  const ticker = setInterval(() => {
    const elapsed = Date.now() - started;
    if (elapsed >= maxDurationMs) stopped = true;
    if (stopped) return clearInterval(ticker);
    const owed = Math.floor((elapsed / 1000) * ratePerSecond) - result.sent;
    for (let i = 0; i < owed && inFlight.size < maxInFlight; i += 1) {
      const request = one(result.sent);
      result.sent += 1;
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
  }, 10);

  return {
    async stop() {
      stopped = true;
      clearInterval(ticker);
      await Promise.all(inFlight);
      result.durationMs = Date.now() - started;
      return result;
    },
  };
}

/** A visitor: the page, then every asset it names; the answer is the first one that is not a 200. */
export async function visit(base: string, signal: AbortSignal): Promise<Response> {
  const page = await fetch(`${base}/`, { signal });
  const html = await page.text();
  if (page.status !== 200) return new Response(null, { status: page.status });
  // Stylesheets and images by attribute; the script through the page's inline loader's import().
  for (const [, asset] of html.matchAll(/(?:href=|src=|import\()"(\/assets\/[^"]+)"/g)) {
    const res = await fetch(`${base}${asset}`, { signal });
    await res.arrayBuffer();
    if (res.status !== 200) return new Response(null, { status: res.status });
  }
  return new Response(null, { status: 200, headers: page.headers });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Posts as the page does (front-end/src/contact-form.ts): once more, with the same Idempotency-Key, after
 * a network error or a 503, Retry-After honoured up to 2 s. A visitor sees only the second answer.
 */
export async function postLikeThePage(
  url: string,
  init: RequestInit & { signal: AbortSignal },
  /** Told of each retry, with the first answer (none after a network error). */
  onRetry: (first: Response | undefined) => void = () => undefined,
): Promise<Response> {
  let first: Response | undefined;
  try {
    first = await fetch(url, init);
    if (first.status !== 503) return first;
    await first.arrayBuffer();
  } catch (error) {
    if (init.signal.aborted) throw error;
  }
  onRetry(first);
  const retryAfter = Number(first?.headers.get('retry-after') ?? Number.NaN);
  await sleep(Number.isFinite(retryAfter) ? Math.min(retryAfter * 1000, 2000) : 1000);
  return fetch(url, init);
}

/** Polls `check` every `everyMs` until it returns a value, or fails with the last reason after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 180_000,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
}

/** Responses with a 5xx status. */
export function serverErrors(result: LoadResult): number {
  return Object.entries(result.statuses)
    .filter(([status]) => Number(status) >= 500)
    .reduce((sum, [, count]) => sum + count, 0);
}

/** One line a scenario prints: what was sent, what failed, and how it spread across replicas. */
export function describeLoad(scenario: string, result: LoadResult): string {
  const spread = Object.entries(result.servedBy)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([replica, count]) => `${replica.slice(0, 12)}=${count}`)
    .join(' ');
  return (
    `[scenario] ${scenario}: sent=${result.sent} in ${(result.durationMs / 1000).toFixed(1)}s, ` +
    `failures=${result.failures}, 5xx=${serverErrors(result)}, statuses=${JSON.stringify(result.statuses)}, ` +
    `by replica: ${spread}` +
    (result.failureSamples.length ? `, e.g. ${result.failureSamples.join(' | ')}` : '')
  );
}

/**
 * Prints the lines of each of `service`'s containers since `since` that match `pattern`, the first and the last;
 * returns a shorter summary for a failure message, since CI keeps only the end of a long log.
 */
async function printLogLines(stack: Stack, service: string, since: string, kind: string, pattern: RegExp) {
  const summary: string[] = [];
  // A service this stack does not have (the file store has no db) prints nothing.
  for (const id of await stack.containers(service).catch(() => [])) {
    const { stdout, stderr } = await run('docker', ['logs', '--since', since, id]);
    const lines = `${stdout}\n${stderr}`.split('\n').filter((line) => pattern.test(line));
    const shown = lines.length > 12 ? [...lines.slice(0, 8), '…', ...lines.slice(-4)] : lines;
    const name = `[${service} ${id.slice(0, 12)}] ${lines.length} ${kind}`;
    console.log([name, ...shown].join('\n'));
    if (lines.length)
      summary.push([name, ...new Set([lines[0]!, lines.at(-1)!])].map((l) => l.slice(0, 300)).join('\n'));
  }
  return summary;
}

/**
 * Prints why requests got a 5xx since `since` (a duration such as `90s`, or a time): the proxy's 5xx lines (which
 * replica, which upstream status, how long) and its error log (a timeout, a refused connect, a name it could not
 * resolve), the back-ends' warnings and errors (why a store was unavailable), and the database's, if any.
 */
export async function printServerErrorLogs(stack: Stack, since: string): Promise<string> {
  const summaries = [
    await printLogLines(
      stack,
      'proxy',
      since,
      '5xx answers, errors and warnings',
      /"status":5\d\d|\[(warn|error|crit)\]/,
    ),
    await printLogLines(stack, 'back-end', since, 'warnings and errors', /"level":(40|50|60)\b/),
    await printLogLines(stack, 'db', since, 'errors, warnings and checkpoints', /ERROR|FATAL|PANIC|WARNING|checkpoint/),
  ];
  return summaries.flat().join('\n');
}

/** A contact POST a visitor load acknowledged: its Idempotency-Key, its message text, and the id its 201 carried. */
export interface Acknowledged {
  key: string;
  text: string;
  id: string;
}

/**
 * The page's visitors while `operation` runs, with 3 s before and after, 100 requests a second: page visits with
 * their assets (20/s), the greeting (60/s) and contact POSTs sent as the page sends them (20/s), each POST with
 * its own key and `message(index)`. Prints each kind's tally, and on any 5xx the logs that say why.
 */
export async function visitorLoad(
  stack: Stack,
  scenario: string,
  operation: () => Promise<void>,
  options: { maxDurationMs: number; message: (index: number) => { name: string; email: string; message: string } },
): Promise<{ results: LoadResult[]; acknowledged: Acknowledged[] }> {
  const { maxDurationMs, message } = options;
  const contactUrl = `${stack.baseUrl}/api/contact`;
  const sent = new Map<number, { key: string; text: string }>(); // POST index → its key and message text
  const acknowledged: Acknowledged[] = [];
  let retried = 0;
  const since = new Date().toISOString();
  const loads = [
    startLoad(`${stack.baseUrl}/`, { ratePerSecond: 20, maxDurationMs, send: (_, s) => visit(stack.baseUrl, s) }),
    startLoad(`${stack.baseUrl}/api/hello`, { ratePerSecond: 60, maxDurationMs }),
    startLoad(contactUrl, {
      ratePerSecond: 20,
      maxDurationMs,
      send: (index, signal) => {
        const contact = message(index);
        const key = randomUUID();
        sent.set(index, { key, text: contact.message });
        const headers = { 'content-type': 'application/json', 'idempotency-key': key };
        const body = JSON.stringify(contact);
        return postLikeThePage(contactUrl, { method: 'POST', headers, body, signal }, () => (retried += 1));
      },
      onResponse: (index, response, body) => {
        if (response.status !== 201) return;
        const { id } = JSON.parse(body) as { id: string };
        acknowledged.push({ ...sent.get(index)!, id });
      },
    }),
  ];
  await sleep(3000);
  await operation();
  await sleep(3000);
  const results = await Promise.all(loads.map((load) => load.stop()));
  ['page visits', '/api/hello', 'POST /api/contact'].forEach((kind, i) =>
    console.log(describeLoad(`${scenario}, ${kind}`, results[i]!)),
  );
  console.log(`[scenario] ${scenario}: ${retried} contact POSTs retried by the page's one retry`);
  if (results.some((result) => serverErrors(result) > 0)) {
    const why = await printServerErrorLogs(stack, since);
    for (const result of results) result.why = why;
  }
  return { results, acknowledged };
}

/** Every request of every load got its answer, and a 200 or a 201: no network failure, no 5xx, nothing else. */
export function expectNoFailedRequest(results: LoadResult[]): void {
  for (const result of results) {
    expect(result.failures, result.failureSamples.join(' | ')).toBe(0);
    expect(serverErrors(result), `${JSON.stringify(result.statuses)}\n${result.why ?? ''}`).toBe(0);
    const ok = (result.statuses['200'] ?? 0) + (result.statuses['201'] ?? 0);
    expect(ok, JSON.stringify(result.statuses)).toBe(result.sent);
  }
}
