/**
 * Phone menu: a real <button> with aria-expanded/aria-controls opens the nav list; Escape, a link
 * click, a click outside or growing to the desktop layout closes it. Also marks the nav link of
 * the section in view (visual only, `.is-active`).
 */
export function initMenu(doc: Document = document): void {
  const toggle = doc.querySelector<HTMLButtonElement>('[data-menu-toggle]');
  const panelId = toggle?.getAttribute('aria-controls');
  const panel = panelId ? doc.getElementById(panelId) : null;
  if (!toggle || !panel) return;

  doc.documentElement.classList.add('has-menu');

  const isOpen = (): boolean => toggle.getAttribute('aria-expanded') === 'true';
  const setOpen = (open: boolean): void => {
    toggle.setAttribute('aria-expanded', String(open));
  };

  toggle.addEventListener('click', () => setOpen(!isOpen()));

  doc.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || !isOpen()) return;
    setOpen(false);
    toggle.focus();
  });

  panel.addEventListener('click', (event) => {
    if (event.target instanceof Element && event.target.closest('a')) setOpen(false);
  });

  doc.addEventListener('click', (event) => {
    if (!isOpen() || !(event.target instanceof Node)) return;
    if (!toggle.contains(event.target) && !panel.contains(event.target)) setOpen(false);
  });

  // Closing the panel when focus leaves it keeps keyboard users from tabbing behind an open menu.
  panel.addEventListener('focusout', (event) => {
    const next = event.relatedTarget;
    if (isOpen() && next instanceof Node && !panel.contains(next) && next !== toggle) setOpen(false);
  });

  const wide = window.matchMedia('(min-width: 62em)');
  wide.addEventListener('change', () => {
    if (wide.matches) setOpen(false);
  });

  markActiveLink(panel);
}

function markActiveLink(panel: HTMLElement): void {
  if (!('IntersectionObserver' in window)) return;
  const links = new Map<string, HTMLAnchorElement>();
  for (const link of panel.querySelectorAll<HTMLAnchorElement>('a[href^="#"]')) {
    const id = link.hash.slice(1);
    if (id) links.set(id, link);
  }
  const sections = [...links.keys()]
    .map((id) => document.getElementById(id))
    .filter((section): section is HTMLElement => section !== null);

  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        for (const link of links.values()) link.classList.remove('is-active');
        links.get(entry.target.id)?.classList.add('is-active');
      }
    },
    // A thin band a little below the header: the section crossing it is "current".
    { rootMargin: '-30% 0px -65% 0px' },
  );
  for (const section of sections) observer.observe(section);
}
