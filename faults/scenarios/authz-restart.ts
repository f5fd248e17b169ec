import { setTimeout as delay } from 'node:timers/promises';
import { generateDpopKeys } from '../../test/kit/dpop-proofs.js';
import { generateTestKey, tamperWithPayload } from '../../test/kit/tokens.js';
import { boundTo, expiredClaims, mfaLoginClaims, signToken } from '../fault-tokens.js';
import { describeKindsAndStatuses, exactly, fmt } from '../figures.js';
import { balanceRead, defineScenario, dpopRequest, withFaultStack } from '../scenario.js';
import type { FaultContext, Measured } from '../scenario.js';
import { startMixedTraffic, type TrafficRequest } from '../traffic.js';

/** Accounts that send transfers with valid `transfer:funds` tokens, and accounts that never hold one. */
const SENDERS = 10;
const senderAccount = (n: number) => `faults-alice-${n % SENDERS}`;
const intruderAccount = (n: number) => `faults-mallory-${n % SENDERS}`;
const RECIPIENT = 'faults-bob';
const OPENING_BALANCE = 1000; // every account of the stub bank opens with 1000
const AMOUNT = 1;

/** What each kind of request must be answered when authz decides it (503 is always allowed: authz down). */
const DECIDED: Readonly<Record<string, number>> = {
  'balance-valid': 200,
  'balance-bad-signature': 401,
  'transfer-valid': 201,
  'transfer-without-scope': 403,
  'transfer-tampered': 401,
  'transfer-expired': 401,
  'transfer-weak-login': 401,
};
const MIX = [
  'balance-valid',
  'balance-valid',
  'balance-valid',
  'balance-bad-signature',
  'transfer-valid',
  'transfer-valid',
  'transfer-without-scope',
  'transfer-tampered',
  'transfer-expired',
  'transfer-weak-login',
] as const;

/**
 * Scenario 3. `kill -9` of authz under load, then a restart a moment later (a supervisor's), `kills` times.
 * Balance reads and transfers with valid and invalid tokens go on throughout. The demo policy requires DPoP
 * on `POST /transfer`: every account holds a DPoP key of its own, and every transfer carries a token bound
 * to it (`cnf.jkt`) with a fresh proof, so that each invalid transfer is refused for what is wrong with its
 * token, not for a missing binding. Required: every request is answered as authz decides it or 503
 * (Envoy's `status_on_error`, failing closed), service is back after the restart, and the bank's ledger
 * shows exactly the transfers answered 201, all from accounts that held a valid `transfer:funds` token:
 * none from the accounts whose tokens lacked the scope, were tampered with, expired or came from a weak
 * login.
 */
async function measure({ profile, target, progress }: FaultContext): Promise<Measured> {
  const settings = profile.restart;
  const key = await generateTestKey('faults-restart');
  const impostor = await generateTestKey(key.kid); // published nowhere: its tokens have a bad signature
  const [senderKeys, intruderKeys] = await Promise.all([
    generateDpopKeys(SENDERS),
    generateDpopKeys(SENDERS),
  ]);
  const issuer = { cacheTtlSeconds: 60, refreshCooldownSeconds: 5 };
  return withFaultStack({ target, key, issuer }, async (stack) => {
    const transferScope = 'view:balance transfer:funds';
    const build = async (kind: (typeof MIX)[number], n: number): Promise<TrafficRequest> => {
      /** A transfer from `sub` with `token` under the DPoP scheme, and a fresh proof of `sub`'s key. */
      const transfer = (sub: string, token: string): Promise<TrafficRequest> =>
        dpopRequest(stack.baseUrl, sub === intruder ? intruderKey : senderKey, token, {
          kind,
          tag: sub,
          method: 'POST',
          path: '/transfer',
          json: { to: RECIPIENT, amount: AMOUNT },
        });
      const intruder = intruderAccount(n);
      const senderKey = senderKeys[n % SENDERS]!;
      const intruderKey = intruderKeys[n % SENDERS]!;
      const intruderBinding = boundTo(intruderKey);
      switch (kind) {
        case 'balance-valid':
          return balanceRead(kind, await signToken(key));
        case 'balance-bad-signature':
          return balanceRead(kind, await signToken(impostor));
        case 'transfer-valid': {
          const sub = senderAccount(n);
          const claims = { sub, scope: transferScope, ...mfaLoginClaims(), ...boundTo(senderKey) };
          return transfer(sub, await signToken(key, { claims }));
        }
        case 'transfer-without-scope': {
          const claims = { sub: intruder, ...mfaLoginClaims(), ...intruderBinding };
          return transfer(intruder, await signToken(key, { claims }));
        }
        case 'transfer-tampered': {
          // A view:balance token whose payload now claims transfer:funds: the signature no longer matches.
          const claims = { sub: intruder, ...mfaLoginClaims(), ...intruderBinding };
          return transfer(intruder, tamperWithPayload(await signToken(key, { claims })));
        }
        case 'transfer-expired': {
          const claims = {
            sub: intruder,
            scope: transferScope,
            ...mfaLoginClaims(),
            ...expiredClaims(),
            ...intruderBinding,
          };
          return transfer(intruder, await signToken(key, { claims }));
        }
        case 'transfer-weak-login': {
          const claims = { sub: intruder, scope: transferScope, ...intruderBinding };
          return transfer(intruder, await signToken(key, { claims }));
        }
      }
    };
    const traffic = startMixedTraffic({ baseUrl: stack.baseUrl, rate: profile.rate, mix: MIX, build });

    const killedAt: number[] = [];
    const startedAfter: number[] = []; // seconds from each kill to the new process's started line
    for (let kill = 1; kill <= settings.kills; kill++) {
      await delay(settings.steadySeconds * 1000);
      progress(`  S3: kill -9 authz (pid ${stack.authz().pid}), ${kill} of ${settings.kills}`);
      killedAt.push(Date.now());
      await stack.killAuthz();
      await delay(settings.downSeconds * 1000);
      await stack.restartAuthz();
      startedAfter.push((Date.now() - killedAt.at(-1)!) / 1000);
      progress(`  S3: authz restarted (pid ${stack.authz().pid})`);
    }
    await delay(settings.tailSeconds * 1000);
    const stoppedAt = Date.now();
    const outcomes = await traffic.stop();

    const wrong = outcomes.filter(
      (outcome) => outcome.status !== 503 && outcome.status !== DECIDED[outcome.kind],
    );
    const unavailable = outcomes.filter((outcome) => outcome.status === 503);
    const lastSecond = unavailable.filter((outcome) => outcome.sentAt >= stoppedAt - 1000);
    // How long each outage lasted, as clients saw it: from the kill to the last 503 it caused. A request sent
    // up to 1 s (Envoy's ext_authz timeout) before a kill may still be waiting for authz when it dies.
    const outages = killedAt.map(() => 0);
    for (const { sentAt } of unavailable) {
      const kill = killedAt.findLastIndex((at) => at <= sentAt + 1000);
      if (kill >= 0) outages[kill] = Math.max(outages[kill]!, (sentAt - killedAt[kill]!) / 1000);
    }
    const validTransfersDone = outcomes.filter(
      (outcome) => outcome.kind === 'transfer-valid' && outcome.status === 201,
    ).length;
    const invalidTransfers = outcomes.filter(
      (outcome) => outcome.kind.startsWith('transfer-') && outcome.kind !== 'transfer-valid',
    ).length;

    // The ledger, read straight from the bank: money that left each account, in transfers of AMOUNT.
    const moved = async (account: string) => (OPENING_BALANCE - (await stack.balanceOf(account))) / AMOUNT;
    let madeBySenders = 0;
    let madeByIntruders = 0;
    for (let n = 0; n < SENDERS; n++) {
      madeBySenders += await moved(senderAccount(n));
      madeByIntruders += await moved(intruderAccount(n));
    }
    const received = -(await moved(RECIPIENT));

    const line =
      `${fmt(outcomes.length)} requests through ${settings.kills} × (kill -9, ${settings.downSeconds} s, restart): ` +
      `${fmt(outcomes.length - unavailable.length - wrong.length)} decided correctly, ${fmt(unavailable.length)} ` +
      `answered 503 (until ${seconds(outages)} after each kill; authz started again ${seconds(startedAfter)} after it), ` +
      `${fmt(wrong.length)} wrong` +
      (wrong.length > 0 ? ` (${describeKindsAndStatuses(wrong)})` : '') +
      `; ledger: ${fmt(madeBySenders)} transfers made, ${fmt(validTransfersDone)} valid transfer requests ` +
      `answered 201, ${fmt(madeByIntruders)} made without a valid transfer:funds token ` +
      `(of ${fmt(invalidTransfers)} attempted)`;
    return {
      line,
      checks: [
        exactly('requests answered neither as decided nor 503', wrong.length, 0),
        exactly('transfers made without a valid transfer:funds token', madeByIntruders, 0),
        exactly(
          'transfers made minus valid transfer requests answered 201',
          madeBySenders - validTransfersDone,
          0,
        ),
        exactly('money received minus money sent (ledger consistency)', received - madeBySenders, 0),
        exactly('503s in the last second (service back after the restart)', lastSecond.length, 0),
      ],
      requests: outcomes.length,
      failures: wrong.length + madeByIntruders,
    };
  });
}

function seconds(values: readonly number[]): string {
  return values.map((value) => `${value.toFixed(1)} s`).join(', ');
}

export const SCENARIO = defineScenario({
  number: 3,
  title: 'kill -9 of authz under load, then restart',
  requirement:
    'answers every request as decided or 503 across kill -9 and restart, and the ledger holds no transfer ' +
    'without a valid transfer:funds token',
  measure,
});
