// The audit trail's rules (src/domain/credential-events.ts): which event an
// update leaves, with which changedFields, and how the user agent is kept.
import { describe, expect, it } from 'vitest';
import { eventClientIp, eventUserAgent, USER_AGENT_MAX, updateEvent } from '../../src/domain/credential-events.ts';

const active = { nickname: 'Paper 1', isActive: true };
const inactive = { nickname: null, isActive: false };

describe('updateEvent', () => {
  it('is null when nothing would change (no event, no write)', () => {
    expect(updateEvent(active, {})).toBeNull();
    expect(updateEvent(active, { nickname: 'Paper 1' })).toBeNull();
    expect(updateEvent(active, { isActive: true })).toBeNull();
    expect(updateEvent(active, { nickname: 'Paper 1', isActive: true })).toBeNull();
    // null nickname means "no nickname": resetting one that is already unset changes nothing.
    expect(updateEvent(inactive, { nickname: null, isActive: false })).toBeNull();
  });

  it('lists every field whose value changed, in a fixed order', () => {
    expect(updateEvent(active, { nickname: 'Live' })).toEqual({ action: 'UPDATED', changedFields: ['nickname'] });
    expect(updateEvent(active, { nickname: null })).toEqual({ action: 'UPDATED', changedFields: ['nickname'] });
    expect(updateEvent(inactive, { nickname: 'Named' })).toEqual({ action: 'UPDATED', changedFields: ['nickname'] });
    expect(updateEvent(active, { secretKey: 's', apiKey: 'k', nickname: 'Paper 1' })).toEqual({
      action: 'UPDATED',
      changedFields: ['apiKey', 'secretKey'],
    });
  });

  it('counts a new apiKey or secretKey as changed, whatever its value', () => {
    expect(updateEvent(active, { apiKey: 'same-as-before' })?.changedFields).toEqual(['apiKey']);
    expect(updateEvent(active, { secretKey: 'same-as-before' })?.changedFields).toEqual(['secretKey']);
  });

  it('is DEACTIVATED when isActive goes from true to false, REACTIVATED from false to true', () => {
    expect(updateEvent(active, { isActive: false })).toEqual({ action: 'DEACTIVATED', changedFields: ['isActive'] });
    expect(updateEvent(inactive, { isActive: true })).toEqual({ action: 'REACTIVATED', changedFields: ['isActive'] });
    expect(updateEvent(active, { isActive: false, nickname: 'Old', apiKey: 'k' })).toEqual({
      action: 'DEACTIVATED',
      changedFields: ['nickname', 'apiKey', 'isActive'],
    });
    // isActive given but unchanged: the other changes make it an UPDATED.
    expect(updateEvent(inactive, { isActive: false, secretKey: 's' })).toEqual({
      action: 'UPDATED',
      changedFields: ['secretKey'],
    });
  });

  it('never carries a value, only field names', () => {
    const event = updateEvent(active, { nickname: 'SECRET-NICK', apiKey: 'SECRET-KEY', secretKey: 'SECRET-S' });
    expect(JSON.stringify(event)).not.toMatch(/SECRET/);
  });
});

describe('eventClientIp', () => {
  it('shows IPv4 peers of a dual-stack socket as plain IPv4, keeps IPv6, and null for unknown', () => {
    expect(eventClientIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(eventClientIp('::FFFF:203.0.113.7')).toBe('203.0.113.7');
    expect(eventClientIp('203.0.113.7')).toBe('203.0.113.7');
    expect(eventClientIp('::1')).toBe('::1');
    expect(eventClientIp('2001:db8::ffff:1')).toBe('2001:db8::ffff:1');
    expect(eventClientIp('unknown')).toBeNull();
  });
});

describe('eventUserAgent', () => {
  it('keeps at most 256 characters, counting code points', () => {
    expect(eventUserAgent('curl/8.5.0')).toBe('curl/8.5.0');
    expect(eventUserAgent('a'.repeat(300))).toBe('a'.repeat(USER_AGENT_MAX));
    expect(eventUserAgent('é'.repeat(300))).toHaveLength(USER_AGENT_MAX);
    expect(eventUserAgent('a'.repeat(256))).toHaveLength(256);
  });

  it('is null without a header', () => {
    expect(eventUserAgent(null)).toBeNull();
    expect(eventUserAgent(undefined)).toBeNull();
    expect(eventUserAgent('')).toBeNull();
  });
});
