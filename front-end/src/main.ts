import { initContactForm } from './contact-form';
import { showGreeting } from './dynamic-content';
import { initMenu } from './menu';
import { initMotion } from './motion';

const greeting = document.querySelector<HTMLElement>('#dynamic-content');
if (greeting) void showGreeting(greeting);

const contactForm = document.querySelector<HTMLFormElement>('form.contact-form');
if (contactForm) initContactForm(contactForm);

initMenu();
initMotion();
