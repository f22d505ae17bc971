import { describe, expect, it } from 'vitest';
import { listenAddress } from './config.js';

describe('listenAddress', () => {
  it('listens on 0.0.0.0:5252 by default', () => {
    expect(listenAddress({})).toEqual({ host: '0.0.0.0', port: 5252 });
  });
  it('takes PORT and HOST from the environment', () => {
    expect(listenAddress({ PORT: '8081', HOST: '127.0.0.1' })).toEqual({ host: '127.0.0.1', port: 8081 });
  });
  it.each(['', 'abc', '0', '70000', '80.5', '-1'])('refuses PORT=%j', (port) => {
    expect(() => listenAddress({ PORT: port })).toThrow(/PORT must be/);
  });
});
