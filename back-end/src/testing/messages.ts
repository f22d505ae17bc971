import { randomUUID } from 'node:crypto';
import type { ContactMessage } from '../stores/types.js';

/** A valid stored message with a fresh id, for the store and CLI tests; overrides change single fields. */
export const aMessage = (overrides: Partial<ContactMessage> = {}): ContactMessage => ({
  id: randomUUID(),
  receivedAt: new Date().toISOString(),
  name: 'Ada',
  email: 'ada@example.com',
  message: 'Hello there',
  ...overrides,
});
