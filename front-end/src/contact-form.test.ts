import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pageHtml from '../index.html?raw';
import {
  CONTACT_RETRY_DELAY_MAX_MS,
  CONTACT_RETRY_DELAY_MS,
  CONTACT_STATUS,
  CONTACT_TIMEOUT_MS,
  initContactForm,
  randomKey,
  type ContactFormOptions,
} from './contact-form';

// The form exactly as the page has it, taken from index.html itself so the two cannot drift apart.
const FORM_HTML = new DOMParser().parseFromString(pageHtml, 'text/html').querySelector('form.contact-form')!.outerHTML;

let form: HTMLFormElement;
let status: HTMLElement;
let button: HTMLButtonElement;
let consoleError: ReturnType<typeof vi.spyOn>;

const control = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLTextAreaElement;

function fill(values: Partial<Record<'name' | 'email' | 'message', string>> = {}): void {
  const filled = { name: 'Ada Lovelace', email: 'ada@example.com', message: 'A demo, please.', ...values };
  for (const [name, value] of Object.entries(filled)) control(name).value = value;
}

function setUp(options: ContactFormOptions, search = ''): void {
  window.history.replaceState(null, '', `/${search}`);
  document.body.innerHTML = FORM_HTML;
  form = document.querySelector('form')!;
  status = form.querySelector('.form-status')!;
  button = form.querySelector('button')!;
  initContactForm(form, options);
}

/** Submits as the browser would, then waits until the form has reported an outcome. */
async function submit(): Promise<void> {
  form.requestSubmit();
  await vi.waitFor(() => expect(button.disabled).toBe(false));
}

const answer = (status: number, body?: unknown) =>
  vi.fn<typeof fetch>(
    async () =>
      new Response(body === undefined ? null : JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json; charset=utf-8' },
      }),
  );

const invalidAnswer = (fields: Record<string, string>) =>
  answer(400, { statusCode: 400, error: 'Bad Request', message: 'Some fields need attention.', fields });

beforeEach(() => {
  consoleError = vi.spyOn(console, 'error');
});
afterEach(() => {
  // Every outcome is a status message; none may surface as a console error.
  expect(consoleError).not.toHaveBeenCalled();
  consoleError.mockRestore();
  vi.useRealTimers();
});

describe('initContactForm: sending', () => {
  it('posts the fields as JSON to the form action, a relative URL that goes through the proxy', async () => {
    const fetchImpl = answer(201, { id: 'x', receivedAt: '2026-01-01T00:00:00.000Z' });
    setUp({ fetchImpl });
    fill({ name: ' Ada ', message: 'Line one\nLine two' });
    await submit();

    expect(fetchImpl).toHaveBeenCalledOnce();
    const [url, init] = fetchImpl.mock.calls[0]!;
    expect(url).toBe('/api/contact');
    expect(init).toMatchObject({
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    });
    expect(init?.signal).toBeInstanceOf(AbortSignal);
    expect(JSON.parse(String(init?.body))).toEqual({
      name: ' Ada ',
      email: 'ada@example.com',
      message: 'Line one\nLine two',
    });
  });

  it('on 201 clears the form and says thanks', async () => {
    setUp({ fetchImpl: answer(201, { id: 'x', receivedAt: '2026-01-01T00:00:00.000Z' }) });
    fill();
    await submit();

    expect(status.textContent).toBe('Thanks — your message is on its way.');
    expect(status.dataset.state).toBe('sent');
    expect([control('name').value, control('email').value, control('message').value]).toEqual(['', '', '']);
  });

  it('disables the button while sending and ignores a second submit meanwhile', async () => {
    let respond: (response: Response) => void = () => {};
    const fetchImpl = vi.fn<typeof fetch>(() => new Promise<Response>((resolve) => (respond = resolve)));
    setUp({ fetchImpl });
    fill();
    form.requestSubmit();

    expect(button.disabled).toBe(true);
    expect(status.textContent).toBe(CONTACT_STATUS.sending);
    expect(status.dataset.state).toBe('sending');
    form.requestSubmit();
    expect(fetchImpl).toHaveBeenCalledOnce();

    respond(new Response(JSON.stringify({ id: 'x', receivedAt: 'now' }), { status: 201 }));
    await vi.waitFor(() => expect(button.disabled).toBe(false));
    expect(status.dataset.state).toBe('sent');
  });
});

describe('initContactForm: invalid fields', () => {
  it('marks each listed field invalid, shows its message next to it and focuses the first', async () => {
    setUp({
      fetchImpl: invalidAnswer({
        name: 'Please enter your name.',
        email: 'Please enter an email address like name@example.com.',
      }),
    });
    fill({ email: 'ada@localhost' });
    await submit();

    expect(status.textContent).toBe(CONTACT_STATUS.invalid);
    expect(status.dataset.state).toBe('invalid');
    for (const [name, message] of [
      ['name', 'Please enter your name.'],
      ['email', 'Please enter an email address like name@example.com.'],
    ] as const) {
      const field = control(name);
      expect(field.getAttribute('aria-invalid')).toBe('true');
      const note = document.getElementById(field.getAttribute('aria-describedby')!);
      expect(note?.className).toBe('field-error');
      expect(note?.textContent).toBe(message);
      expect(note?.previousElementSibling).toBe(field);
    }
    expect(control('message').hasAttribute('aria-invalid')).toBe(false);
    expect(document.activeElement).toBe(control('name'));
    // The values stay, so the visitor can fix them.
    expect(control('email').value).toBe('ada@localhost');
  });

  it('clears the old errors when the form is sent again', async () => {
    const fetchImpl = invalidAnswer({ email: 'Please enter an email address like name@example.com.' });
    setUp({ fetchImpl });
    fill({ email: 'ada@localhost' });
    await submit();
    expect(form.querySelectorAll('.field-error')).toHaveLength(1);

    fetchImpl.mockImplementation(
      async () => new Response(JSON.stringify({ id: 'x', receivedAt: 'now' }), { status: 201 }),
    );
    fill();
    await submit();

    expect(form.querySelectorAll('.field-error')).toHaveLength(0);
    expect(control('email').hasAttribute('aria-invalid')).toBe(false);
    expect(control('email').hasAttribute('aria-describedby')).toBe(false);
    expect(status.dataset.state).toBe('sent');
  });

  it('does not stack error notes when the same field is invalid twice', async () => {
    setUp({ fetchImpl: invalidAnswer({ email: 'Please enter an email address like name@example.com.' }) });
    fill();
    await submit();
    await submit();
    expect(form.querySelectorAll('.field-error')).toHaveLength(1);
    expect(control('email').getAttribute('aria-describedby')).toBe('contact-email-error');
  });

  it('keeps a description the markup gave a field of its own', async () => {
    setUp({ fetchImpl: invalidAnswer({ email: 'Please enter an email address like name@example.com.' }) });
    control('email').setAttribute('aria-describedby', 'email-hint');
    fill();
    await submit();
    expect(control('email').getAttribute('aria-describedby')).toBe('email-hint contact-email-error');
    await submit();
    expect(control('email').getAttribute('aria-describedby')).toBe('email-hint contact-email-error');
  });

  it('shows messages as text, never as markup', async () => {
    setUp({ fetchImpl: invalidAnswer({ name: '<img src=x onerror=alert(1)>' }) });
    fill();
    await submit();
    expect(form.querySelector('img')).toBeNull();
    expect(form.querySelector('.field-error')?.textContent).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('initContactForm: failures', () => {
  it('says the message is too long on 413', async () => {
    setUp({
      fetchImpl: answer(413, { statusCode: 413, error: 'Payload Too Large', message: 'Request body is too large' }),
    });
    fill();
    await submit();
    expect(status.textContent).toBe('That message is too long.');
    expect(status.dataset.state).toBe('invalid');
  });

  it.each([
    [
      'a 500',
      answer(500, { statusCode: 500, error: 'Internal Server Error', message: 'Something went wrong on our side.' }),
    ],
    [
      'a 502 from the proxy, in HTML',
      vi.fn<typeof fetch>(async () => new Response('<h1>502 Bad Gateway</h1>', { status: 502 })),
    ],
    [
      'a 400 without fields',
      answer(400, { statusCode: 400, error: 'Bad Request', message: 'Unexpected end of JSON input' }),
    ],
    ['a 400 that is not JSON', vi.fn<typeof fetch>(async () => new Response('<h1>400</h1>', { status: 400 }))],
    ['a 200 that is not the API', vi.fn<typeof fetch>(async () => new Response('<!doctype html>', { status: 200 }))],
    ['a 429 from the proxy', answer(429, { statusCode: 429, error: 'Too Many Requests', message: 'Slow down.' })],
  ])('says sorry on %s and keeps what was typed', async (_case, fetchImpl) => {
    setUp({ fetchImpl });
    fill();
    await submit();
    expect(status.textContent).toBe("Sorry, we couldn't send that. Please try again in a moment.");
    expect(status.dataset.state).toBe('error');
    expect(control('message').value).toBe('A demo, please.');
    expect(form.querySelectorAll('[aria-invalid]')).toHaveLength(0);
    // Only a network error or a 503 is worth a retry; these answers are final.
    expect(fetchImpl).toHaveBeenCalledOnce();
  });

  it('gives up after 10 s, says sorry and frees the button', async () => {
    vi.useFakeTimers();
    const hanging = vi.fn<typeof fetch>(
      (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        }),
    );
    setUp({ fetchImpl: hanging });
    fill();
    form.requestSubmit();

    await vi.advanceTimersByTimeAsync(CONTACT_TIMEOUT_MS - 1);
    expect(status.dataset.state).toBe('sending');
    expect(button.disabled).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(CONTACT_TIMEOUT_MS).toBe(10_000);
    // A timed-out attempt is not tried again: the visitor has waited long enough.
    expect(hanging).toHaveBeenCalledOnce();
    expect(status.textContent).toBe(CONTACT_STATUS.error);
    expect(status.dataset.state).toBe('error');
    expect(button.disabled).toBe(false);
  });

  it('leaves no timer behind after a quick answer', async () => {
    vi.useFakeTimers();
    setUp({ fetchImpl: answer(201, { id: 'x', receivedAt: 'now' }) });
    fill();
    form.requestSubmit();
    await vi.advanceTimersByTimeAsync(0);
    expect(status.dataset.state).toBe('sent');
    expect(vi.getTimerCount()).toBe(0);
  });
});

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const keyOf = (fetchImpl: ReturnType<typeof vi.fn<typeof fetch>>, call: number) =>
  (fetchImpl.mock.calls[call]![1]!.headers as Record<string, string>)['Idempotency-Key'];
const bodyOf = (fetchImpl: ReturnType<typeof vi.fn<typeof fetch>>, call: number) =>
  fetchImpl.mock.calls[call]![1]!.body;
const networkError = () => Promise.reject(new TypeError('Failed to fetch'));
const created = async () => new Response(JSON.stringify({ id: 'x', receivedAt: 'now' }), { status: 201 });
const unavailable = (retryAfter?: string) => async () =>
  new Response(JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: 'Try again.' }), {
    status: 503,
    headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter },
  });

describe('initContactForm: exactly once', () => {
  it('sends an Idempotency-Key, a random UUID, and a new one with the next submission', async () => {
    const fetchImpl = answer(201, { id: 'x', receivedAt: 'now' });
    setUp({ fetchImpl });
    fill();
    await submit();
    fill();
    await submit();
    expect(keyOf(fetchImpl, 0)).toMatch(UUID_V4);
    expect(keyOf(fetchImpl, 1)).toMatch(UUID_V4);
    expect(keyOf(fetchImpl, 1)).not.toBe(keyOf(fetchImpl, 0));
  });

  it('retries once after a network error, with the same key and body, and then says thanks', async () => {
    vi.useFakeTimers();
    const fetchImpl = vi.fn<typeof fetch>().mockImplementationOnce(networkError).mockImplementationOnce(created);
    setUp({ fetchImpl });
    fill();
    form.requestSubmit();

    await vi.advanceTimersByTimeAsync(CONTACT_RETRY_DELAY_MS - 1);
    expect(fetchImpl).toHaveBeenCalledOnce();
    expect(status.dataset.state).toBe('sending');
    await vi.advanceTimersByTimeAsync(1);
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect(keyOf(fetchImpl, 1)).toBe(keyOf(fetchImpl, 0));
    expect(bodyOf(fetchImpl, 1)).toBe(bodyOf(fetchImpl, 0));
    expect(status.dataset.state).toBe('sent');
    expect(control('message').value).toBe('');
  });

  it.each([
    ['1', 1_000],
    ['0', 0],
    ['30', CONTACT_RETRY_DELAY_MAX_MS],
    [undefined, CONTACT_RETRY_DELAY_MS],
    ['Wed, 21 Oct 2099 07:28:00 GMT', CONTACT_RETRY_DELAY_MS],
  ])('retries once after a 503 with Retry-After %j, %i ms later', async (retryAfter, delay) => {
    vi.useFakeTimers();
    const fetchImpl = vi
      .fn<typeof fetch>()
      .mockImplementationOnce(unavailable(retryAfter))
      .mockImplementationOnce(created);
    setUp({ fetchImpl });
    fill();
    form.requestSubmit();

    if (delay > 0) {
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(fetchImpl).toHaveBeenCalledOnce();
    }
    await vi.advanceTimersByTimeAsync(1);
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect(keyOf(fetchImpl, 1)).toBe(keyOf(fetchImpl, 0));
    expect(status.dataset.state).toBe('sent');
    expect(CONTACT_RETRY_DELAY_MAX_MS).toBe(2_000);
  });

  it.each([
    ['two 503s', [unavailable('1'), unavailable('1')]],
    ['two network errors', [networkError, networkError]],
    ['a network error, then a 503', [networkError, unavailable('1')]],
  ])('retries only once: after %s it says sorry and keeps what was typed', async (_case, attempts) => {
    vi.useFakeTimers();
    const fetchImpl = vi.fn<typeof fetch>();
    for (const attempt of attempts) fetchImpl.mockImplementationOnce(attempt);
    setUp({ fetchImpl });
    fill();
    form.requestSubmit();
    await vi.advanceTimersByTimeAsync(CONTACT_TIMEOUT_MS);

    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect(status.textContent).toBe(CONTACT_STATUS.error);
    expect(status.dataset.state).toBe('error');
    expect(control('message').value).toBe('A demo, please.');
    expect(button.disabled).toBe(false);
  });

  it('keeps the key when the visitor sends the same words again after an error, not after a change', async () => {
    vi.useFakeTimers();
    const fetchImpl = vi.fn<typeof fetch>(networkError);
    setUp({ fetchImpl });
    fill();
    form.requestSubmit();
    await vi.advanceTimersByTimeAsync(CONTACT_TIMEOUT_MS);
    form.requestSubmit();
    await vi.advanceTimersByTimeAsync(CONTACT_TIMEOUT_MS);
    // Maybe stored after all: the same words again are the same submission.
    expect(keyOf(fetchImpl, 2)).toBe(keyOf(fetchImpl, 0));

    fill({ message: 'A demo, please, next week.' });
    fetchImpl.mockImplementation(created);
    form.requestSubmit();
    await vi.advanceTimersByTimeAsync(0);
    expect(keyOf(fetchImpl, 4)).not.toBe(keyOf(fetchImpl, 0));
    expect(status.dataset.state).toBe('sent');

    // After a 201 the same words are a new message.
    fill({ message: 'A demo, please, next week.' });
    form.requestSubmit();
    await vi.advanceTimersByTimeAsync(0);
    expect(keyOf(fetchImpl, 5)).not.toBe(keyOf(fetchImpl, 4));
  });
});

describe('randomKey', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('makes version 4 UUIDs, also where crypto.randomUUID is missing (a page served over plain HTTP)', () => {
    expect(randomKey()).toMatch(UUID_V4);
    const { getRandomValues } = crypto;
    vi.stubGlobal('crypto', { getRandomValues: getRandomValues.bind(crypto) });
    expect(crypto.randomUUID).toBeUndefined();
    const keys = Array.from({ length: 200 }, () => randomKey());
    for (const key of keys) expect(key).toMatch(UUID_V4);
    expect(new Set(keys).size).toBe(200);
  });
});

describe('initContactForm: coming back from a post without JavaScript', () => {
  it.each([
    ['?contact=sent', 'sent', CONTACT_STATUS.sent],
    ['?contact=invalid', 'invalid', CONTACT_STATUS.returnedInvalid],
  ])('shows the outcome of %s and drops it from the address', (search, state, text) => {
    setUp({ fetchImpl: answer(201) }, `${search}#contact`);
    expect(status.textContent).toBe(text);
    expect(status.dataset.state).toBe(state);
    expect(window.location.search).toBe('');
    expect(window.location.hash).toBe('#contact');
  });

  it.each(['', '?contact=other', '?utm_source=mail'])('shows nothing for %j', (search) => {
    setUp({ fetchImpl: answer(201) }, search);
    expect(status.textContent).toBe('');
    expect(status.dataset.state).toBeUndefined();
    expect(window.location.search).toBe(search);
  });

  it('keeps other query parameters when dropping the flag', () => {
    setUp({ fetchImpl: answer(201) }, '?utm_source=mail&contact=sent');
    expect(window.location.search).toBe('?utm_source=mail');
  });
});
