import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { initMotion, parseCounter } from './motion';

/** A stand-in for IntersectionObserver (happy-dom has none): tests say when an element comes into view. */
class FakeObserver {
  static all: FakeObserver[] = [];
  readonly observed = new Set<Element>();
  constructor(
    private readonly callback: IntersectionObserverCallback,
    readonly options: IntersectionObserverInit = {},
  ) {
    FakeObserver.all.push(this);
  }
  observe(el: Element): void {
    this.observed.add(el);
  }
  unobserve(el: Element): void {
    this.observed.delete(el);
  }
  disconnect(): void {
    this.observed.clear();
  }
  /** Reports each element as in view (or not), the way the browser would on a scroll. */
  show(elements: Element[], isIntersecting = true): void {
    const entries = elements.map((target) => ({ target, isIntersecting }) as IntersectionObserverEntry);
    this.callback(entries, this as unknown as IntersectionObserver);
  }
}

const FOLD = 800;
/** Puts an element at a height on the page; happy-dom lays nothing out, so every box is at 0 otherwise. */
const placeAt = (el: Element, top: number) => {
  el.getBoundingClientRect = () => ({ top }) as DOMRect;
};
const prefersReducedMotion = (reduce: boolean) =>
  vi
    .spyOn(window, 'matchMedia')
    .mockImplementation((query) => ({ matches: reduce && query.includes('reduce') }) as MediaQueryList);

let above: HTMLElement;
let below: HTMLElement;
let counter: HTMLElement;
beforeEach(() => {
  FakeObserver.all = [];
  vi.stubGlobal('IntersectionObserver', FakeObserver);
  vi.stubGlobal('innerHeight', FOLD);
  document.documentElement.className = '';
  document.body.innerHTML = `
    <section data-reveal id="above">hero</section>
    <section data-reveal id="below">pricing</section>
    <strong data-count>12,480</strong>`;
  above = document.querySelector<HTMLElement>('#above')!;
  below = document.querySelector<HTMLElement>('#below')!;
  counter = document.querySelector<HTMLElement>('[data-count]')!;
  placeAt(above, 100);
  placeAt(below, 2400);
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const revealObserver = () => FakeObserver.all.find((o) => o.options.rootMargin !== undefined)!;
const counterObserver = () => FakeObserver.all.find((o) => o.options.threshold === 0.6)!;

describe('initMotion: fade-in on scroll', () => {
  it('holds back only what is below the fold, so the first paint shows everything above it', () => {
    prefersReducedMotion(false);
    initMotion(document);
    expect(document.documentElement.classList.contains('has-motion')).toBe(true);
    expect(above.classList.contains('is-pending')).toBe(false);
    expect(below.classList.contains('is-pending')).toBe(true);
    expect([...revealObserver().observed]).toEqual([below]);
  });

  it('reveals an element once it scrolls into view, then stops watching it', () => {
    prefersReducedMotion(false);
    initMotion(document);
    const observer = revealObserver();

    observer.show([below], false);
    expect(below.classList.contains('is-pending')).toBe(true);

    observer.show([below]);
    expect(below.classList.contains('is-pending')).toBe(false);
    expect(below.classList.contains('is-revealing')).toBe(true);
    expect(observer.observed.has(below)).toBe(false);

    below.dispatchEvent(new Event('transitionend'));
    expect(below.classList.contains('is-revealing')).toBe(false);
  });

  it('does nothing under prefers-reduced-motion: nothing held back, no observer', () => {
    prefersReducedMotion(true);
    initMotion(document);
    expect(document.documentElement.classList.contains('has-motion')).toBe(false);
    expect(document.querySelectorAll('.is-pending')).toHaveLength(0);
    expect(FakeObserver.all).toHaveLength(0);
  });
});

describe('initMotion: count-up numbers', () => {
  it('counts up once the number is in view and ends on the exact text the page was written with', () => {
    prefersReducedMotion(false);
    let clock = 0;
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal('requestAnimationFrame', (frame: FrameRequestCallback) => frames.push(frame));
    initMotion(document);
    expect(frames).toHaveLength(0);

    counterObserver().show([counter]);
    const seen: string[] = [];
    while (frames.length > 0 && clock < 10_000) {
      frames.shift()!(clock);
      seen.push(counter.textContent ?? '');
      clock += 200;
    }
    expect(seen[0]).toBe('0');
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toBe('12,480');
    expect(counterObserver().observed.has(counter)).toBe(false);
  });
});

describe('parseCounter', () => {
  it.each([
    ['12,480', { prefix: '', value: 12480, suffix: '' }],
    ['99%', { prefix: '', value: 99, suffix: '%' }],
    ['$29', { prefix: '$', value: 29, suffix: '' }],
  ])('reads %s', (text, parts) => {
    expect(parseCounter(text)).toEqual(parts);
  });

  it.each(['', 'many', '1.5k', '12 480'])('returns null for %j', (text) => {
    expect(parseCounter(text)).toBeNull();
  });
});
