import type { Context, Next } from 'koa';
import { ClientGoneError } from '../../errors.ts';
import { fixedLineWriter } from '../../log/fixed-line.ts';
import type { Logger } from '../../log/logger.ts';
import type { ProxyMetrics } from '../../metrics/proxy-metrics.ts';
import type { AfterResponse } from '../after-response.ts';
import type { InFlight } from '../in-flight.ts';
import { logRequest } from './access-log.ts';
import { renderError } from './errors.ts';
import { countRequest } from './observe.ts';
import { adoptRequestId } from './request-id.ts';

export interface EdgeOptions {
  logger: Logger;
  secrets: readonly string[];
  /** LOG_PROMPT_BODY. */
  logBodies: boolean;
  metrics: Pick<ProxyMetrics, 'requests' | 'duration' | 'firstByte'>;
  modelLabel: (m: string | undefined) => string;
  /** True once the process is draining: answers carry `Connection: close`. */
  draining?: () => boolean;
  /** Where the access line and the request metrics wait until the response is out. */
  afterResponse: AfterResponse;
  /** Counts the requests still running, which the shutdown waits for (see InFlight). */
  inFlight?: InFlight;
}

/**
 * A request whose client left (a ClientGoneError, thrown from reading its body to waiting for the
 * upstream): no answer is written, it is recorded as 499, and the upstream key asked, if any, is
 * kept for its usage row (that upstream may have read, and bill, the prompt).
 */
export function markClientGone(ctx: Context, err: ClientGoneError): void {
  ctx.state.clientGone = true;
  if (err.upstreamKeyId !== undefined) ctx.state.upstreamKeyId = err.upstreamKeyId;
  ctx.respond = false;
}

/** The status the client got: Koa's, or the one a relayed stream wrote itself. */
export function responseStatus(ctx: Context): number {
  return ctx.respond === false ? ctx.res.statusCode : ctx.status;
}

/**
 * What every request goes through, in one layer (each layer of Koa's chain costs every request
 * a promise and a suspended frame): the request id, `Connection: close` while draining, errors
 * rendered in OpenAI's shape, and — once the response or stream is finished — the access line
 * and the request metrics, queued to run after the response is written.
 */
export function edge(o: EdgeOptions) {
  const writeAccessLine = fixedLineWriter(o.logger, 'request');
  return async function edgeLayer(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    adoptRequestId(ctx);
    if (o.draining?.()) ctx.set('connection', 'close');
    o.inFlight?.enter();
    try {
      await next();
    } catch (err) {
      if (err instanceof ClientGoneError) markClientGone(ctx, err);
      else renderError(ctx, err, o.logger, o.secrets);
    } finally {
      const ms = performance.now() - started;
      const status = ctx.state.clientGone ? 499 : responseStatus(ctx);
      // Set by the proxy route when the upstream's answer starts going out (see proxyRequest).
      const answeredAt = ctx.state.answeredAt as number | undefined;
      const firstByteMs = answeredAt === undefined ? undefined : answeredAt - started;
      o.afterResponse.run(() => {
        logRequest(writeAccessLine, ctx, status, ms, o.logBodies);
        countRequest(o.metrics, ctx, status, ms, firstByteMs, o.modelLabel);
      });
      // Last: the inner layers' bookkeeping (the usage row) is queued by now.
      o.inFlight?.leave();
    }
  };
}
