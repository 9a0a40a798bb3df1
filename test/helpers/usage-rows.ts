import { waitFor } from './processes.ts';
import type { TestStack } from './stack.ts';

/** A proxy key's usage rows, oldest first. */
export async function usageRows(stack: TestStack, keyId: number) {
  const { rows } = await stack.db.query(
    `SELECT request_id, route, model, prompt_tokens, completion_tokens, total_tokens, estimated, status_code,
            stream, upstream_key_id, error_code FROM usage_logs WHERE api_key_id = $1 ORDER BY created_at`,
    [keyId],
  );
  return rows;
}

/** The key's usage rows, once there are `count` of them (they are written in batches). */
export async function rowsOnceThere(stack: TestStack, keyId: number, count: number, what: string) {
  await waitFor(async () => (await usageRows(stack, keyId)).length === count, { timeoutMs: 3_000, what });
  return usageRows(stack, keyId);
}
