/**
 * The e2e test's stack: named `e2e` (so every Docker object is `gpt-proxy-e2e-…`), the test
 * bed's images in place of the official ones, the Docker host the test engine, nginx published
 * on 127.0.0.1 on free ports, pebble as the CA (reached by its alias on the stack's own network,
 * its TLS root given as `acmeCaBundle`) and the fake upstream as the OpenAI base URL. Everything
 * else keeps Pulumi.yaml's defaults, secrets included: they are generated (@pulumi/random).
 */
import type { DockerCli } from '../docker/cli.ts';
import type { ImageTags } from '../docker/recipes.ts';
import type { StackSettings } from './applier/capture.ts';

export const STACK = 'e2e';
export const PREFIX = `gpt-proxy-${STACK}`;
export const DOMAIN = 'api.gpt-proxy-e2e.test';
export const UPSTREAM_KEYS = ['sk-e2e-first-0123456789', 'sk-e2e-second-0123456789'];

export interface E2eStackOptions {
  cli: DockerCli;
  tags: ImageTags;
  /** pebble's TLS root (PEM). */
  caBundle: string;
  httpPort: number;
  httpsPort: number;
  rateLimitRpm: number;
  /** The same for every capture of one run (the generated secrets stay the same). */
  seed: string;
}

export function e2eStack(o: E2eStackOptions): StackSettings {
  return {
    stack: STACK,
    seed: o.seed,
    config: {
      dockerHost: o.cli.host,
      domain: DOMAIN,
      acmeDirectory: 'https://pebble:14000/dir',
      acmeCaBundle: o.caBundle,
      openaiBaseUrl: 'http://fake-upstream:8080/v1',
      appReplicas: 2,
      rateLimitRpm: o.rateLimitRpm,
      bindAddress: '127.0.0.1',
      httpPort: o.httpPort,
      httpsPort: o.httpsPort,
      images: { postgres: o.tags.postgres, redis: o.tags.redis, nginx: o.tags.nginx, nodeBase: o.tags.node },
    },
    secrets: { openaiApiKeys: UPSTREAM_KEYS.join(',') },
  };
}
