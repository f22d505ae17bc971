import { initContactForm } from './contact-form';
import { showGreeting } from './dynamic-content';
import { initMenu } from './menu';
import { initMotion } from './motion';

/**
 * Nothing here is needed for the first frame: the greeting, the form's checks, the menu and the motion all
 * enhance a page that works without them. So they start once the first paint is on screen, and neither
 * their work nor their requests stand before it on a slow phone. Without paint timing, they start at once.
 */
function afterFirstPaint(start: () => void): void {
  if (!PerformanceObserver.supportedEntryTypes?.includes('paint')) return start();
  const observer = new PerformanceObserver(() => {
    observer.disconnect();
    start();
  });
  observer.observe({ type: 'paint', buffered: true });
}

afterFirstPaint(() => {
  const greeting = document.querySelector<HTMLElement>('#dynamic-content');
  if (greeting) void showGreeting(greeting);

  const contactForm = document.querySelector<HTMLFormElement>('form.contact-form');
  if (contactForm) initContactForm(contactForm);

  initMenu();
  initMotion();
});
