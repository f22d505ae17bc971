import { initContactForm } from './contact-form';
import { showGreeting } from './dynamic-content';
import { initMenu } from './menu';
import { initMotion } from './motion';

// The greeting is asked for once the first frame is painted (the callback of a timer set in the frame's
// requestAnimationFrame): a request that ends before the first paint would otherwise count as part of it.
const greeting = document.querySelector<HTMLElement>('#dynamic-content');
if (greeting) requestAnimationFrame(() => setTimeout(() => void showGreeting(greeting)));

const contactForm = document.querySelector<HTMLFormElement>('form.contact-form');
if (contactForm) initContactForm(contactForm);

initMenu();
initMotion();
