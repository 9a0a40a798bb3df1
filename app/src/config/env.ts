import { readFileSync } from 'node:fs';

/** Variables that hold secrets: each may instead be given as NAME_FILE, a path to read it from. */
export const SECRET_VARIABLES = [
  'DATABASE_URL',
  'POSTGRES_PASSWORD',
  'REDIS_URL',
  'REDIS_PASSWORD',
  'ENCRYPTION_KEY',
  'ENCRYPTION_KEY_PREVIOUS',
  'OPENAI_API_KEYS',
  'AZURE_API_KEYS',
] as const;

export type Env = Readonly<Record<string, string | undefined>>;

export interface EnvProblem {
  variable: string;
  message: string;
}

/**
 * Returns a copy of `env` in which every secret given as NAME_FILE is read into NAME, the way
 * the official Postgres and Redis images do it. Empty strings count as unset, because compose
 * files and Pulumi often pass `VAR=` for "not configured". Problems are returned, never thrown,
 * so that all of them can be reported at once.
 */
export function resolveEnv(env: Env): { env: Record<string, string>; problems: EnvProblem[] } {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') out[name] = value;
  }
  const problems: EnvProblem[] = [];
  for (const name of SECRET_VARIABLES) {
    const file = out[`${name}_FILE`];
    if (file === undefined) continue;
    if (out[name] !== undefined) {
      problems.push({ variable: name, message: `set either ${name} or ${name}_FILE, not both` });
      continue;
    }
    try {
      const content = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      if (content !== '') out[name] = content;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
      problems.push({
        variable: `${name}_FILE`,
        message: `cannot read the file it names (${code}); point it at a readable file holding ${name}`,
      });
    }
  }
  return { env: out, problems };
}
