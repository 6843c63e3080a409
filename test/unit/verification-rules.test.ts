// The rules of broker verification, without HTTP or a database.
import { describe, expect, it } from 'vitest';
import {
  type BrokerAnswer,
  type BrokerEnvironment,
  environmentsToTry,
  fitsInHeader,
  maskAccountNumber,
  UNVERIFIED,
  verificationColumns,
  verificationFromColumns,
  verifyAtBroker,
} from '../../src/domain/verification.ts';

const NOW = new Date('2026-12-01T08:00:00.000Z');

/** Answers by environment, and remembers which were asked. */
function broker(answers: Partial<Record<BrokerEnvironment, BrokerAnswer>>) {
  const asked: BrokerEnvironment[] = [];
  const ask = async (environment: BrokerEnvironment) => {
    asked.push(environment);
    const answer = answers[environment];
    if (!answer) throw new Error(`${environment} was not expected to be asked`);
    return answer;
  };
  return { asked, ask };
}

const accepted: BrokerAnswer = { kind: 'accepted', accountNumber: 'PA3ABCDEFGH1', accountStatus: 'ACTIVE' };
const rejected = (httpStatus = 401): BrokerAnswer => ({ kind: 'rejected', httpStatus });

describe('environmentsToTry', () => {
  it('asks paper first for PK keys, live first for any other', () => {
    expect(environmentsToTry('PKABC123')).toEqual(['PAPER', 'LIVE']);
    expect(environmentsToTry('AKABC123')).toEqual(['LIVE', 'PAPER']);
    expect(environmentsToTry('pkabc')).toEqual(['LIVE', 'PAPER']);
    expect(environmentsToTry('P')).toEqual(['LIVE', 'PAPER']);
  });
});

describe('verifyAtBroker', () => {
  it('is VERIFIED by the first environment that accepts, with the masked number and broker status', async () => {
    const { asked, ask } = broker({ PAPER: accepted });
    expect(await verifyAtBroker('PKX', ask, () => NOW)).toEqual({
      status: 'VERIFIED',
      checkedAt: NOW,
      environment: 'PAPER',
      brokerAccountNumber: '••••FGH1',
      brokerAccountStatus: 'ACTIVE',
      message: null,
    });
    expect(asked).toEqual(['PAPER']);
  });

  it('falls back to the other environment on 401 or 403 only', async () => {
    const live = broker({ PAPER: rejected(403), LIVE: accepted });
    expect(await verifyAtBroker('PKX', live.ask, () => NOW)).toMatchObject({ status: 'VERIFIED', environment: 'LIVE' });
    expect(live.asked).toEqual(['PAPER', 'LIVE']);

    const down = broker({ LIVE: { kind: 'unreachable', reason: 'server-error', httpStatus: 503 } });
    expect(await verifyAtBroker('AKX', down.ask, () => NOW)).toMatchObject({
      status: 'UNREACHABLE',
      environment: null,
      message: 'Alpaca live answered with a server error (HTTP 503).',
    });
    expect(down.asked).toEqual(['LIVE']);
  });

  it('is INVALID when both refuse, UNREACHABLE when the second cannot answer', async () => {
    const invalid = broker({ LIVE: rejected(401), PAPER: rejected(401) });
    expect(await verifyAtBroker('AKX', invalid.ask, () => NOW)).toEqual({
      ...UNVERIFIED,
      status: 'INVALID',
      checkedAt: NOW,
      message: 'Alpaca paper and live both refused these keys (HTTP 401).',
    });
    const timeout = broker({ PAPER: rejected(), LIVE: { kind: 'unreachable', reason: 'timeout' } });
    expect(await verifyAtBroker('PKX', timeout.ask, () => NOW)).toMatchObject({
      status: 'UNREACHABLE',
      message: 'Alpaca live did not answer in time.',
    });
  });

  it('says why it was unreachable, never with anything from the broker but a status code', async () => {
    const cases: [BrokerAnswer, string][] = [
      [{ kind: 'unreachable', reason: 'connection' }, 'Could not connect to Alpaca paper.'],
      [
        { kind: 'unreachable', reason: 'rate-limited', httpStatus: 429 },
        'Alpaca paper is limiting requests (HTTP 429); try again later.',
      ],
      [
        { kind: 'unreachable', reason: 'unreadable', httpStatus: 200 },
        'Alpaca paper sent an answer that is not an account.',
      ],
      [
        { kind: 'unreachable', reason: 'unexpected', httpStatus: 418 },
        'Alpaca paper answered unexpectedly (HTTP 418).',
      ],
    ];
    for (const [answer, message] of cases) {
      expect((await verifyAtBroker('PKX', broker({ PAPER: answer }).ask, () => NOW)).message).toBe(message);
    }
  });

  it('keeps the broker status word bounded for its column', async () => {
    const long = broker({ PAPER: { kind: 'accepted', accountNumber: '1', accountStatus: 'X'.repeat(500) } });
    const state = await verifyAtBroker('PKX', long.ask, () => NOW);
    expect(state.brokerAccountStatus).toHaveLength(64);
    expect(state.brokerAccountNumber).toBe('••••');
  });
});

describe('maskAccountNumber', () => {
  it('shows at most the last 4 characters, and at most half of a short number', () => {
    expect(maskAccountNumber('PA3ABCDEFGH1')).toBe('••••FGH1');
    expect(maskAccountNumber('12345678')).toBe('••••5678');
    expect(maskAccountNumber('123456')).toBe('••••456');
    expect(maskAccountNumber('12')).toBe('••••2');
  });
});

describe('fitsInHeader', () => {
  it('accepts visible ASCII only', () => {
    expect(fitsInHeader('PKABC123xyz/+=')).toBe(true);
    for (const bad of ['', 'has space', 'tab\there', 'ünï', 'line\nbreak', 'PK•1'])
      expect(fitsInHeader(bad)).toBe(false);
  });
});

describe('stored state', () => {
  it('round-trips through the columns, and UNVERIFIED clears everything', () => {
    const verified = {
      status: 'VERIFIED' as const,
      checkedAt: NOW,
      environment: 'LIVE' as const,
      brokerAccountNumber: '••••6789',
      brokerAccountStatus: 'ACTIVE',
      message: null,
    };
    expect(verificationFromColumns(verificationColumns(verified))).toEqual(verified);
    expect(verificationColumns(UNVERIFIED)).toEqual({
      verificationStatus: 'UNVERIFIED',
      verificationCheckedAt: null,
      verificationEnvironment: null,
      brokerAccountNumber: null,
      brokerAccountStatus: null,
      verificationMessage: null,
    });
    expect(verificationFromColumns({ ...verificationColumns(verified), verificationStatus: 'bogus' })).toEqual(
      UNVERIFIED,
    );
  });
});
