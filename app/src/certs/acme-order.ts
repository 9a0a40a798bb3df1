import { chmod, mkdir, unlink, writeFile } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { dirname, join } from 'node:path';
import acme from 'acme-client';
import type { Logger } from '../log/logger.ts';
import { probeDirectory, takeRateLimitSeen } from './acme-http.ts';
import { classifyError, OrderError, storageError } from './errors.ts';
import type { CertPair } from './store.ts';

export interface OrderRequest {
  directoryUrl: string;
  agent: Agent;
  accountKeyPem: string;
  email: string | undefined;
  domain: string;
  webroot: string;
  logger: Logger;
  /** acme-client's polling while the CA validates and issues; tests shorten it. */
  polling?: Polling;
}

export interface Polling {
  attempts: number;
  minMs: number;
  maxMs: number;
}

// Up to about a minute and a half.
const POLLING: Polling = { attempts: 20, minMs: 500, maxMs: 5000 };

type Client = InstanceType<typeof acme.Client>;
type Order = Awaited<ReturnType<Client['createOrder']>>;
type Authorization = Awaited<ReturnType<Client['getAuthorizations']>>[number];

const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
// Let's Encrypt says "DNS problem: NXDOMAIN ..." (type dns); pebble "could not resolve URL".
const DNS_FAILURE = /DNS problem|could not resolve|NXDOMAIN|SERVFAIL|no valid IP addresses/i;

async function step<T>(phase: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classifyError(err, phase, takeRateLimitSeen());
  }
}

/** The CA's own account of why a challenge failed (type and detail), when it gives one. */
async function challengeProblem(
  client: Client,
  order: Order,
  url: string,
): Promise<{ type?: string; detail?: string }> {
  try {
    const authzs = await client.getAuthorizations(order);
    const challenge = authzs.flatMap((a) => a.challenges).find((c) => c.url === url);
    return (challenge?.error ?? {}) as { type?: string; detail?: string };
  } catch {
    return {};
  }
}

/** HTTP-01: puts the key authorization where nginx serves it, has the CA check it, cleans up. */
async function satisfy(client: Client, order: Order, authz: Authorization, req: OrderRequest): Promise<void> {
  if (authz.status === 'valid') return; // the CA reused an earlier authorization
  const name = authz.identifier.value;
  const challenge = authz.challenges.find((c) => c.type === 'http-01');
  if (!challenge) throw new OrderError('challenge', `the CA offered no http-01 challenge for ${name}`);
  if (!TOKEN.test(challenge.token))
    throw new OrderError('ca_error', 'the CA sent a malformed challenge token');
  const dir = join(req.webroot, '.well-known', 'acme-challenge');
  const file = join(dir, challenge.token);
  const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // nginx's workers are not root: whatever the umask, they must be able to read the token.
    for (const d of [dirname(dir), dir]) await chmod(d, 0o755).catch(() => {});
    await writeFile(file, keyAuthorization, { mode: 0o644 });
    await chmod(file, 0o644);
  } catch (err) {
    // Not left pending at the CA, where pending authorizations count against a limit.
    await client.deactivateAuthorization(authz).catch(() => {});
    throw storageError(err, `writing the challenge token to ${dir}`);
  }
  try {
    await step('challenge', () => client.completeChallenge(challenge));
    await client.waitForValidStatus(challenge);
  } catch (err) {
    // Polling included: a CA gone (NoResponseError), 429, ... are what they are; only a plain
    // error means the CA found the challenge invalid.
    const classified = classifyError(err, 'challenge', takeRateLimitSeen());
    if (err instanceof OrderError || classified.reason !== 'ca_error') throw classified;
    const problem = await challengeProblem(client, order, challenge.url);
    const detail = problem.detail ?? (err instanceof Error ? err.message : String(err));
    const type = problem.type?.replace('urn:ietf:params:acme:error:', '') ?? 'unknown';
    const reason = type === 'dns' || DNS_FAILURE.test(detail) ? 'dns' : 'challenge';
    throw new OrderError(reason, `http-01 challenge for ${name} failed (${type}): ${detail}`);
  } finally {
    await unlink(file).catch(() => {});
  }
}

/**
 * One complete ACME order for `domain` with HTTP-01 through ACME_WEBROOT: account (created on
 * first use, found again by its key afterwards), order, challenge, a fresh ECDSA P-256
 * certificate key, finalization, download. Every failure is an OrderError with a class.
 */
export async function orderCertificate(req: OrderRequest): Promise<CertPair> {
  takeRateLimitSeen();
  await probeDirectory(req.directoryUrl, req.agent);
  const polling = req.polling ?? POLLING;
  const client = new acme.Client({
    directoryUrl: req.directoryUrl,
    accountKey: req.accountKeyPem,
    backoffAttempts: polling.attempts,
    backoffMin: polling.minMs,
    backoffMax: polling.maxMs,
  });
  const contact = req.email ? [`mailto:${req.email}`] : [];
  await step('account', () => client.createAccount({ termsOfServiceAgreed: true, contact }));
  const order = await step('new order', () =>
    client.createOrder({ identifiers: [{ type: 'dns', value: req.domain }] }),
  );
  req.logger.info({ domain: req.domain, order: order.url }, 'ACME order placed');
  const authzs = await step('authorization', () => client.getAuthorizations(order));
  for (const authz of authzs) await satisfy(client, order, authz, req);
  const keyPem = await acme.crypto.createPrivateEcdsaKey('P-256');
  const [, csr] = await acme.crypto.createCsr({ commonName: req.domain, altNames: [req.domain] }, keyPem);
  const finalized = await step('finalize', () => client.finalizeOrder(order, csr));
  const chainPem = await step('download', () => client.getCertificate(finalized));
  return { chainPem, keyPem: keyPem.toString() };
}
