/** What `#dynamic-content` shows when the API cannot answer: short, calm, and never an error dump. */
export const GREETING_FALLBACK = 'Our greeting is taking a break — the page works all the same.';

/** A slow API must not leave the line empty: after this long the fallback is shown instead. */
export const GREETING_TIMEOUT_MS = 5000;

export interface GreetingOptions {
  /** Relative on purpose: the request goes to whoever served the page, i.e. through the proxy. */
  url?: string;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

/**
 * Asks the API for the greeting and writes it into `target`.
 * Never rejects: any failure (network, HTTP status, timeout) ends in the fallback text, so no
 * uncaught error reaches the console. `data-state` tells styles and tests how it ended.
 */
export async function showGreeting(target: HTMLElement, options: GreetingOptions = {}): Promise<void> {
  const { url = '/api/hello', timeoutMs = GREETING_TIMEOUT_MS, fetchImpl = fetch } = options;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  target.setAttribute('aria-busy', 'true');
  try {
    const response = await fetchImpl(url, { signal: controller.signal, headers: { Accept: 'text/plain' } });
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    const text = (await response.text()).trim();
    if (text === '') throw new Error(`GET ${url} answered an empty body`);
    target.textContent = text;
    target.dataset.state = 'loaded';
  } catch {
    target.textContent = GREETING_FALLBACK;
    target.dataset.state = 'fallback';
  } finally {
    clearTimeout(timer);
    target.removeAttribute('aria-busy');
  }
}
