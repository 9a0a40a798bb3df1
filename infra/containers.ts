import type * as docker from '@pulumi/docker';

// Settings every container of the appliance shares: restart policy, bounded json-file logs, labels
// that say which stack and service a container belongs to, and the health-check shapes.

export const RESTART = 'unless-stopped';

/** json-file with rotation: at most 5 files of 10 MB per container. */
export const LOGGING = {
  logDriver: 'json-file',
  logOpts: { 'max-size': '10m', 'max-file': '5' },
} as const;

/** For processes that need no privileges at all (the app image runs as `node`). */
export const UNPRIVILEGED = {
  capabilities: { drops: ['ALL'] },
  securityOpts: ['no-new-privileges:true'],
};

export function labels(prefix: string, service: string): docker.types.input.ContainerLabel[] {
  return [
    { label: 'gpt-proxy.stack', value: prefix },
    { label: 'gpt-proxy.service', value: service },
  ];
}

/** A health check running `tests` (Docker's CMD / CMD-SHELL form) every 10 s. */
export function probe(tests: string[], startPeriod = '30s'): docker.types.input.ContainerHealthcheck {
  return { tests, interval: '10s', timeout: '5s', retries: 5, startPeriod };
}

/** A health check that GETs `url` with the image's own Node (the slim image has no curl). */
export function httpProbe(url: string, startPeriod = '30s'): docker.types.input.ContainerHealthcheck {
  const script = `fetch(${JSON.stringify(url)}).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`;
  return probe(['CMD', 'node', '-e', script], startPeriod);
}

/** A health check run by the container's /bin/sh. */
export function shellProbe(command: string, startPeriod = '30s'): docker.types.input.ContainerHealthcheck {
  return probe(['CMD-SHELL', command], startPeriod);
}
