import type { Dispatcher } from 'undici';

export interface BufferedAnswer {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
}

/**
 * One upstream request whose answer is read whole — a JSON completion, an error body — through
 * undici's dispatch API: the same connection pools, timeouts and errors as `request()`, without a
 * body stream to create and drain for a body of a few hundred bytes. A non-2xx body is kept up to
 * `errorBodyLimit` bytes (the rest is read and dropped). Aborting `signal` cancels the request and
 * rejects with the signal's reason.
 */
export function requestBuffered(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: AbortSignal,
  errorBodyLimit: number,
): Promise<BufferedAnswer> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let limit = Number.POSITIVE_INFINITY;
    let statusCode = 0;
    let headers: BufferedAnswer['headers'] = {};
    let controller: Dispatcher.DispatchController | undefined;
    const onAbort = () => controller?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal.removeEventListener('abort', onAbort);
    dispatcher.dispatch(options, {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) c.abort(signal.reason);
      },
      onResponseStart(_c, status, responseHeaders) {
        statusCode = status;
        headers = responseHeaders;
        if (status < 200 || status >= 300) limit = errorBodyLimit;
      },
      onResponseData(_c, chunk) {
        if (kept >= limit) return;
        const part = kept + chunk.length > limit ? chunk.subarray(0, limit - kept) : chunk;
        chunks.push(part);
        kept += part.length;
      },
      onResponseEnd() {
        settle();
        resolve({
          statusCode,
          headers,
          body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        });
      },
      onResponseError(_c, err) {
        settle();
        reject(signal.aborted ? signal.reason : err);
      },
    });
  });
}
