/** One accepted contact message, as stored and as listed. */
export interface ContactMessage {
  id: string;
  receivedAt: string;
  name: string;
  email: string;
  message: string;
  /** The client's Idempotency-Key, when it sent one: a repeat with the same key is stored once. */
  idempotencyKey?: string;
}

export interface AppendResult {
  /** The stored message: this one, or the one stored first under the same idempotency key. */
  message: ContactMessage;
  /** False when the key (or the id) was already stored and nothing new was written. */
  created: boolean;
}

/** Where accepted messages are kept: the JSON-lines file on one machine, PostgreSQL on many. */
export interface ContactStore {
  readonly kind: 'file' | 'postgres';
  /**
   * Resolves only once the message is durable (datasynced, or committed), never before. Rejects with
   * StoreUnavailableError when the storage cannot be reached, so the caller can answer 503 and not 500.
   */
  append(message: ContactMessage): Promise<AppendResult>;
  /** Every stored message, oldest first (operators and tests). */
  list(): Promise<ContactMessage[]>;
  /** Resolves when the store can take a message now; rejects with StoreUnavailableError otherwise. */
  ready(): Promise<void>;
  /** Waits for appends already queued, then releases the file or the connections. */
  close(): Promise<void>;
}

/** The storage cannot be reached right now; trying again later may work. The API answers it with 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}
