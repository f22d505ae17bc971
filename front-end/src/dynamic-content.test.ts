import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GREETING_FALLBACK, GREETING_TIMEOUT_MS, showGreeting } from './dynamic-content';

let target: HTMLElement;
beforeEach(() => {
  document.body.innerHTML = '<p id="dynamic-content">Loading…</p>';
  target = document.querySelector<HTMLElement>('#dynamic-content')!;
});
afterEach(() => {
  vi.useRealTimers();
});

const answer = (body: string, status = 200) => vi.fn<typeof fetch>(async () => new Response(body, { status }));

describe('showGreeting', () => {
  it('asks the API with a relative URL, so the request goes through the proxy', async () => {
    const fetchImpl = answer('Hello, World!');
    await showGreeting(target, { fetchImpl });
    expect(fetchImpl).toHaveBeenCalledOnce();
    expect(fetchImpl.mock.calls[0]?.[0]).toBe('/api/hello');
  });

  it('writes the API text into the element', async () => {
    await showGreeting(target, { fetchImpl: answer('Hello, World!\n') });
    expect(target.textContent).toBe('Hello, World!');
    expect(target.dataset.state).toBe('loaded');
    expect(target.hasAttribute('aria-busy')).toBe(false);
  });

  it('treats text as text, never as markup', async () => {
    await showGreeting(target, { fetchImpl: answer('<img src=x onerror=alert(1)>') });
    expect(target.querySelector('img')).toBeNull();
    expect(target.textContent).toBe('<img src=x onerror=alert(1)>');
  });

  it.each([
    ['a server error', answer('oops', 500)],
    ['a 404', answer('{"statusCode":404}', 404)],
    ['a 503 from the proxy', answer('{"statusCode":503}', 503)],
    ['an empty body', answer('   ')],
    ['a network failure', vi.fn<typeof fetch>(async () => Promise.reject(new TypeError('Failed to fetch')))],
  ])('shows the fallback on %s, without throwing', async (_name, fetchImpl) => {
    await expect(showGreeting(target, { fetchImpl })).resolves.toBeUndefined();
    expect(target.textContent).toBe(GREETING_FALLBACK);
    expect(target.dataset.state).toBe('fallback');
  });

  it('gives up after 5 s and shows the fallback', async () => {
    vi.useFakeTimers();
    const hanging = vi.fn<typeof fetch>(
      (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    );
    const done = showGreeting(target, { fetchImpl: hanging });
    await vi.advanceTimersByTimeAsync(GREETING_TIMEOUT_MS - 1);
    expect(target.dataset.state).toBeUndefined();
    expect(target.textContent).toBe('Loading…');
    await vi.advanceTimersByTimeAsync(1);
    await done;
    expect(GREETING_TIMEOUT_MS).toBe(5000);
    expect(target.textContent).toBe(GREETING_FALLBACK);
    expect(target.dataset.state).toBe('fallback');
  });

  it('leaves no timer behind after a quick answer', async () => {
    vi.useFakeTimers();
    await showGreeting(target, { fetchImpl: answer('Hello, World!') });
    expect(vi.getTimerCount()).toBe(0);
  });
});
