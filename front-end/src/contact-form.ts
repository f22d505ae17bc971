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

export interface ContactFormOptions {
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
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
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // Enter in a field submits even while the button is disabled.
    if (sending) return;
    sending = true;
    button.disabled = true;
    void send(form, status, options).finally(() => {
      sending = false;
      button.disabled = false;
    });
  });
}

async function send(form: HTMLFormElement, status: HTMLElement, options: ContactFormOptions): Promise<void> {
  const { timeoutMs = CONTACT_TIMEOUT_MS, fetchImpl = fetch } = options;
  clearFieldErrors(form);
  showStatus(status, 'sending', CONTACT_STATUS.sending);

  const data = new FormData(form);
  const body = Object.fromEntries(FIELD_NAMES.map((name) => [name, textOf(data.get(name))]));
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    // The attribute, not `form.action`: relative, so it goes to whoever served the page, i.e. the proxy.
    const response = await fetchImpl(form.getAttribute('action') ?? '/api/contact', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const fieldErrors = response.status === 400 ? await fieldErrorsOf(response) : undefined;
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
