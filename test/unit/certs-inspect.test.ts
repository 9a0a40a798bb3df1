import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPair, isDue, renewalDueAt } from '../../app/src/certs/inspect.ts';
import { createPlaceholder } from '../../app/src/certs/placeholder.ts';
import { caIssuedPair } from '../helpers/pebble.ts';

const DOMAIN = 'api.example.com';
const DAY = 86_400_000;
const now = new Date();
const good = caIssuedPair(DOMAIN, {
  notBefore: new Date(now.getTime() - DAY),
  notAfter: new Date(now.getTime() + 89 * DAY),
});
const other = caIssuedPair(DOMAIN, { notBefore: now, notAfter: new Date(now.getTime() + DAY) });

const blocks = (pem: string) => pem.split(/(?<=-----END CERTIFICATE-----\n)/);

describe('checkPair', () => {
  it('accepts a matching chain and key for the domain', () => {
    const check = checkPair(good.chainPem, good.keyPem, DOMAIN);
    assert.ok(check.ok);
    assert.equal(check.info.serial, good.serial);
    assert.equal(check.info.selfSigned, false);
    assert.match(check.info.issuer, /earlier test CA/);
  });

  const cases: Array<[string, string, string, string, RegExp]> = [
    ['garbage', 'not a certificate', good.keyPem, DOMAIN, /holds no PEM certificate/],
    [
      'a damaged PEM block',
      good.chainPem.replace(/^(-----BEGIN CERTIFICATE-----\n.{10})/, '$1AAAA'),
      good.keyPem,
      DOMAIN,
      /cannot be parsed/,
    ],
    ['a truncated key', good.chainPem, good.keyPem.slice(0, 60), DOMAIN, /no private key that can be parsed/],
    [
      'the key of another certificate',
      good.chainPem,
      other.keyPem,
      DOMAIN,
      /does not belong to the certificate/,
    ],
    [
      'another domain',
      good.chainPem,
      good.keyPem,
      'www.example.com',
      /is for DNS:api.example.com, not www.example.com/,
    ],
    [
      'a chain whose intermediate did not sign the leaf',
      `${blocks(good.chainPem)[0]}${blocks(other.chainPem)[1]}`,
      good.keyPem,
      DOMAIN,
      /not a chain/,
    ],
  ];
  for (const [name, chain, key, domain, reason] of cases) {
    it(`refuses ${name}`, () => {
      const check = checkPair(chain, key, domain);
      assert.equal(check.ok, false);
      if (!check.ok) assert.match(check.reason, reason);
      if (!check.ok) assert.doesNotMatch(check.reason, /PRIVATE KEY|BEGIN/, 'no key material in reasons');
    });
  }
});

describe('renewal timing', () => {
  it('is due once less than the fraction of the lifetime remains', () => {
    const info = {
      serial: '01',
      issuer: 'x',
      selfSigned: false,
      notBefore: new Date(0),
      notAfter: new Date(90 * DAY),
    };
    assert.equal(renewalDueAt(info, 0.33).getTime(), 90 * DAY - 0.33 * 90 * DAY);
    assert.equal(isDue(info, true, 0.33, new Date(60 * DAY)), false);
    assert.equal(isDue(info, true, 0.33, new Date(61 * DAY)), true);
    assert.equal(isDue(info, true, 0.5, new Date(46 * DAY)), true);
  });

  it('treats a placeholder as due with ACME and by the fraction rule without', () => {
    const check = checkPair(
      createPlaceholder(DOMAIN, now).chainPem,
      createPlaceholder(DOMAIN, now).keyPem,
      DOMAIN,
    );
    assert.equal(check.ok, false, 'two placeholders never share a key');
    const pair = createPlaceholder(DOMAIN, now);
    const placeholder = checkPair(pair.chainPem, pair.keyPem, DOMAIN);
    assert.ok(placeholder.ok);
    assert.equal(placeholder.info.selfSigned, true);
    assert.equal(isDue(placeholder.info, true, 0.33, now), true);
    assert.equal(isDue(placeholder.info, false, 0.33, now), false);
    assert.equal(isDue(placeholder.info, false, 0.33, new Date(now.getTime() + 61 * DAY)), true);
  });
});
