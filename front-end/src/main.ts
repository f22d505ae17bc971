import { showGreeting } from './dynamic-content';
import { initMenu } from './menu';
import { initMotion } from './motion';

const greeting = document.querySelector<HTMLElement>('#dynamic-content');
if (greeting) void showGreeting(greeting);

initMenu();
initMotion();
