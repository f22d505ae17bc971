/** What `.form-status` says; `data-state` carries the same outcome for styles and tests. */
export const CONTACT_STATUS = {
  sending: 'Sending your message…',
  sent: 'Thanks — your message is on its way.',
  invalid: 'Please check the highlighted fields.',
  // After a no-JS post came back invalid the server could not say which field; the browser's own checks passed.
  returnedInvalid: "Some details didn't look right. Please check the form and send it again.",
  tooLong: 'That message is too long.',
  error: "Sorry, we couldn't send that. Please try again in a moment.",
} as const;

/** A stalled request must not leave the button disabled forever: after this long it counts as failed. */
export const CONTACT_TIMEOUT_MS = 10_000;

/** The pause before the one retry after a network error, or after a 503 without Retry-After. */
export const CONTACT_RETRY_DELAY_MS = 1_000;
/** The longest a 503's Retry-After may hold the retry back: the visitor is watching "Sending…". */
export const CONTACT_RETRY_DELAY_MAX_MS = 2_000;

export interface ContactFormOptions {
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
  /** Makes the Idempotency-Key of one submission; a random UUID by default. */
  newKey?: () => string;
}

type StatusState = 'sending' | 'sent' | 'invalid' | 'error';
type FieldControl = HTMLInputElement | HTMLTextAreaElement;

const FIELD_NAMES = ['name', 'email', 'message'] as const;

/**
 * Sends the contact form with `fetch` and reports the outcome in place. Progressive enhancement: the
 * form keeps its real `action`, so without this script (or before it loads) it still posts and the
 * API redirects back with `?contact=sent|invalid`, which this script then shows as a status too.
 * Never throws and never logs an error: every failure ends as a calm status message.
 */
export function initContactForm(form: HTMLFormElement, options: ContactFormOptions = {}): void {
  const status = form.querySelector<HTMLElement>('.form-status');
  const button = form.querySelector<HTMLButtonElement | HTMLInputElement>('[type="submit"]');
  // Without these the enhanced form could not report anything; the plain post still works.
  if (!status || !button) return;

  showReturnedStatus(form, status);

  let sending = false;
  const unsettled: Unsettled = {};
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // Enter in a field submits even while the button is disabled.
    if (sending) return;
    sending = true;
    button.disabled = true;
    void send(form, status, options, unsettled).finally(() => {
      sending = false;
      button.disabled = false;
    });
  });
}

/**
 * A version 4 UUID. crypto.randomUUID exists only in secure contexts (HTTPS or localhost); a site served over
 * plain HTTP still has crypto.getRandomValues, so the key is built from that there.
 */
export function randomKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** How long to wait before the retry: the 503's Retry-After (seconds) within bounds, else the default. */
function retryDelayOf(response: Response | undefined): number {
  const seconds = Number(response?.headers.get('retry-after') ?? Number.NaN);
  if (!Number.isFinite(seconds) || seconds < 0) return CONTACT_RETRY_DELAY_MS;
  return Math.min(seconds * 1000, CONTACT_RETRY_DELAY_MAX_MS);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

/**
 * Posts once, and once more with the very same request (so the same Idempotency-Key) after a network error
 * or a 503: the first attempt may have been stored or not, and the key makes the API store it at most once.
 * The timeout covers both attempts; a timed-out attempt is not retried.
 */
async function postWithOneRetry(fetchImpl: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  let first: Response | undefined;
  try {
    first = await fetchImpl(url, init);
    if (first.status !== 503) return first;
  } catch (error) {
    if (init.signal?.aborted) throw error;
  }
  if (init.signal) await pause(retryDelayOf(first), init.signal);
  return fetchImpl(url, init);
}

/** The last submission whose fate is unknown (it ended in an error): its body and its Idempotency-Key. */
interface Unsettled {
  body?: string;
  key?: string;
}

async function send(
  form: HTMLFormElement,
  status: HTMLElement,
  options: ContactFormOptions,
  unsettled: Unsettled,
): Promise<void> {
  const { timeoutMs = CONTACT_TIMEOUT_MS, fetchImpl = fetch, newKey = randomKey } = options;
  clearFieldErrors(form);
  showStatus(status, 'sending', CONTACT_STATUS.sending);

  const data = new FormData(form);
  const body = JSON.stringify(Object.fromEntries(FIELD_NAMES.map((name) => [name, textOf(data.get(name))])));
  // Sending the same words again after an error is the same submission: it may have been stored already.
  const key = unsettled.body === body && unsettled.key ? unsettled.key : newKey();
  Object.assign(unsettled, { body, key });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    // The attribute, not `form.action`: relative, so it goes to whoever served the page, i.e. the proxy.
    const response = await postWithOneRetry(fetchImpl, form.getAttribute('action') ?? '/api/contact', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Idempotency-Key': key },
      body,
      signal: controller.signal,
    });
    const fieldErrors = response.status === 400 ? await fieldErrorsOf(response) : undefined;
    // A definite answer settles the submission; the next one gets a key of its own.
    if (response.status === 201 || response.status === 400 || response.status === 413) {
      delete unsettled.body;
      delete unsettled.key;
    }
    if (response.status === 201) {
      form.reset();
      showStatus(status, 'sent', CONTACT_STATUS.sent);
    } else if (fieldErrors) {
      showFieldErrors(form, fieldErrors);
      showStatus(status, 'invalid', CONTACT_STATUS.invalid);
    } else if (response.status === 413) {
      showStatus(status, 'invalid', CONTACT_STATUS.tooLong);
    } else {
      showStatus(status, 'error', CONTACT_STATUS.error);
    }
  } catch {
    // Network failure, the timeout's abort, or an unreadable body: all the same to the visitor.
    showStatus(status, 'error', CONTACT_STATUS.error);
  } finally {
    clearTimeout(timer);
  }
}

function textOf(value: FormDataEntryValue | null): string {
  return typeof value === 'string' ? value : '';
}

function showStatus(status: HTMLElement, state: StatusState, text: string): void {
  status.textContent = text;
  status.dataset.state = state;
}

function showReturnedStatus(form: HTMLFormElement, status: HTMLElement): void {
  const view = form.ownerDocument.defaultView;
  if (!view) return;
  const url = new URL(view.location.href);
  const returned = url.searchParams.get('contact');
  if (returned === 'sent') showStatus(status, 'sent', CONTACT_STATUS.sent);
  else if (returned === 'invalid') showStatus(status, 'invalid', CONTACT_STATUS.returnedInvalid);
  else return;
  // Drop the flag from the address bar, so a reload or a shared link does not report it again.
  url.searchParams.delete('contact');
  view.history.replaceState(view.history.state, '', url);
}

/** The `fields` of a 400 answer (field name → message), or undefined if the body has none. */
async function fieldErrorsOf(response: Response): Promise<Map<string, string> | undefined> {
  const body: unknown = await response.json();
  if (typeof body !== 'object' || body === null || !('fields' in body)) return undefined;
  const { fields } = body;
  if (typeof fields !== 'object' || fields === null) return undefined;
  const messages = new Map(
    Object.entries(fields).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
  return messages.size > 0 ? messages : undefined;
}

function controlNamed(form: HTMLFormElement, name: string): FieldControl | undefined {
  const control = form.elements.namedItem(name);
  return control instanceof HTMLInputElement || control instanceof HTMLTextAreaElement ? control : undefined;
}

const errorIdFor = (control: FieldControl): string => `${control.id || control.name}-error`;

function showFieldErrors(form: HTMLFormElement, messages: Map<string, string>): void {
  let first: FieldControl | undefined;
  for (const [name, message] of messages) {
    // A field the form does not have (only a hand-made request could cause one) has nowhere to show.
    const control = controlNamed(form, name);
    if (!control) continue;
    const note = form.ownerDocument.createElement('span');
    note.className = 'field-error';
    note.id = errorIdFor(control);
    note.textContent = message;
    control.insertAdjacentElement('afterend', note);
    control.setAttribute('aria-invalid', 'true');
    const describedBy = control.getAttribute('aria-describedby');
    control.setAttribute('aria-describedby', describedBy ? `${describedBy} ${note.id}` : note.id);
    first ??= control;
  }
  // Keyboard and screen-reader users land on the first thing to fix.
  first?.focus();
}

function clearFieldErrors(form: HTMLFormElement): void {
  for (const note of form.querySelectorAll('.field-error')) note.remove();
  for (const control of form.querySelectorAll<FieldControl>('[aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    // Keep any description the markup had of its own; drop only ours.
    const kept = (control.getAttribute('aria-describedby') ?? '')
      .split(/\s+/)
      .filter((id) => id && id !== errorIdFor(control));
    if (kept.length > 0) control.setAttribute('aria-describedby', kept.join(' '));
    else control.removeAttribute('aria-describedby');
  }
}
