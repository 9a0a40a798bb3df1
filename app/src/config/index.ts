import { type Env, type EnvProblem, resolveEnv } from './env.ts';
import { type Config, type Section, sections } from './schema.ts';

export type { EnvProblem } from './env.ts';
export type { Config, Section } from './schema.ts';

/** Thrown when the environment is invalid; `problems` name each variable and its fix, never a value. */
export class ConfigError extends Error {
  readonly problems: EnvProblem[];
  constructor(problems: EnvProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses the sections a program needs from the environment, once, into a frozen object.
 * Collects every problem of every section before throwing, so an operator fixes them in one go.
 */
export function loadConfig<S extends Section>(env: Env, wanted: readonly S[]): Pick<Config, S> {
  const resolved = resolveEnv(env);
  const problems = [...resolved.problems];
  const result: Partial<Record<Section, unknown>> = {};
  for (const name of wanted) {
    const parsed = sections[name].safeParse(resolved.env);
    if (parsed.success) {
      result[name] = parsed.data;
    } else {
      for (const issue of parsed.error.issues) {
        problems.push({ variable: String(issue.path[0] ?? name), message: issue.message });
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(result) as Pick<Config, S>;
}

/**
 * For command-line programs: loads the config or prints the problems and exits with EX_CONFIG
 * (78) before anything listens or connects.
 */
export function loadConfigOrExit<S extends Section>(
  wanted: readonly S[],
  env: Env = process.env,
): Pick<Config, S> {
  try {
    return loadConfig(env, wanted);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`gpt-proxy: ${err.message}\n`);
    process.exit(78);
  }
}
