import { readFileSync } from 'node:fs';
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { LOGGING, labels, probe, RESTART } from './containers.ts';
import { DB } from './env.ts';
import { REPO_ROOT } from './images.ts';
import { SECRETS_DIR, secretUpload } from './secret-files.ts';

// Database backups: a container of the Postgres image (so pg_dump and pg_restore are the server's
// major version) on the internal `data` network, running scripts/backup.sh's loop: `pg_dump -Fc`
// into the `backups` volume whenever `backupSchedule` fires, keeping `backupRetention` of them.
// The same script restores (`docker exec … gpt-proxy-backup restore NAME`; docs/runbook.md).
//
// The volume outlives `pulumi destroy` (retainOnDelete): destroying a stack must not take its
// backups with it. It runs as root without any capability: Docker creates the new volume's
// directory owned by root, and root owning its own files needs no privilege (the dumps are 0600).
// The database password is a libpq password file (PGPASSFILE), uploaded root-owned and 0400 (libpq
// ignores one that group or others may read), so it is in no environment and on no command line.

export const BACKUP_DIR = '/backups';
export const BACKUP_COMMAND = '/usr/local/bin/gpt-proxy-backup';
export const PGPASSFILE = `${SECRETS_DIR}/pgpass`;
const SCRIPT = `${REPO_ROOT}scripts/backup.sh`;

/** The password file's one line: any database of the appliance's server as its user; `:` and `\` escaped. */
export function pgpassLine(password: string): string {
  const field = (text: string) => text.replace(/[\\:]/g, (c) => `\\${c}`);
  return `${field(DB.host)}:${DB.port}:*:${field(DB.user)}:${field(password)}\n`;
}

export interface BackupsArgs {
  provider: docker.Provider;
  prefix: string;
  /** The Postgres image the database runs. */
  image: pulumi.Input<string>;
  /** The internal network Postgres is on. */
  network: pulumi.Input<string>;
  password: pulumi.Output<string>;
  /** A checked cron expression or `off` (backup-schedule.ts). */
  schedule: string;
  retention: number;
  dependsOn: pulumi.Resource[];
}

export class Backups extends pulumi.ComponentResource {
  readonly volume: docker.Volume;
  readonly container: docker.Container;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Backups', name, {}, opts);
    const child = { parent: this, provider: args.provider };
    this.volume = new docker.Volume(
      `${name}-volume`,
      { name: `${args.prefix}-backups`, labels: [{ label: 'gpt-proxy.stack', value: args.prefix }] },
      { ...child, retainOnDelete: true },
    );
    const env = [
      `PGHOST=${DB.host}`,
      `PGPORT=${DB.port}`,
      `PGUSER=${DB.user}`,
      `PGDATABASE=${DB.name}`,
      `PGPASSFILE=${PGPASSFILE}`,
      `BACKUP_DIR=${BACKUP_DIR}`,
      `BACKUP_SCHEDULE=${args.schedule}`,
      `BACKUP_RETENTION=${args.retention}`,
    ];
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.prefix}-backup`,
        image: args.image,
        entrypoints: [BACKUP_COMMAND],
        command: ['loop'],
        uploads: [
          { file: BACKUP_COMMAND, content: readFileSync(SCRIPT, 'utf8'), executable: true },
          secretUpload(PGPASSFILE, args.password.apply(pgpassLine), '0400'),
        ],
        envs: env,
        user: '0:0',
        capabilities: { drops: ['ALL'] },
        securityOpts: ['no-new-privileges:true'],
        volumes: [{ volumeName: this.volume.name, containerPath: BACKUP_DIR }],
        networksAdvanced: [{ name: args.network }],
        // Unhealthy after a failed scheduled backup, until one succeeds (`docker ps` shows it).
        healthcheck: probe(['CMD', BACKUP_COMMAND, 'health'], '10s'),
        wait: true,
        // A replacement started after a failed backup is healthy only once its start-up retry has
        // written one: a whole pg_dump and pg_restore read-back, minutes on a database of a few GB.
        // (A retry that fails too keeps `pulumi up` waiting this long before it reports it.)
        waitTimeout: 900,
        init: true,
        restart: RESTART,
        // Lets a backup under way finish; an interrupted one leaves only a partial file, removed at start.
        stopTimeout: 120,
        destroyGraceSeconds: 120,
        labels: labels(args.prefix, 'backup'),
        ...LOGGING,
      },
      { ...child, deleteBeforeReplace: true, dependsOn: args.dependsOn },
    );
    this.registerOutputs({ volume: this.volume.name, container: this.container.name });
  }
}
