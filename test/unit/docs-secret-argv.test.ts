import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

// A secret given to `pulumi config set --secret NAME VALUE` is visible to every user in `ps` and
// kept in the shell's history. Operators paste what the docs and the stack files' comments show,
// so those must use the forms that read it from the prompt or stdin.

const DOCS = [
  'README.md',
  'docs/runbook.md',
  'docs/deploy-e2e.md',
  'docs/docker-testbed.md',
  'Pulumi.yaml',
  'Pulumi.dev.yaml',
  'Pulumi.prod.yaml',
];

/** The lines of `text` that run `config set --secret` with a value on its command line. */
function secretsOnCommandLine(text: string): string[] {
  return text.split('\n').filter((line) =>
    // A command's words end at a comment, a pipe or redirection, or the backtick closing it in prose.
    [...line.matchAll(/config set((?: +[^\s#`|;&<>)]+)+)/g)].some((m) => {
      const words = (m[1] as string).trim().split(/ +/);
      return words.includes('--secret') && words.filter((w) => !w.startsWith('-')).length > 1;
    }),
  );
}

// The same goes for any other program's arguments: a key in `curl -H "Authorization: Bearer $KEY"`,
// or handed to `docker exec … node` as an argument, is in every user's `ps` while it runs. The docs
// send headers through `printf … | curl -H @-` (printf is a shell builtin) and give containers a
// secret by `-e NAME`, which takes its value from docker's environment.

/** Programs whose arguments must not carry a secret (shell builtins such as printf may). */
const PROGRAMS = /(?:^|[\s({])(curl|wget|docker|node|npm|npx|psql|redis-cli|pulumi|ssh)(?=\s|$)/;
/** A variable named like a secret; NAME_FILE only names a file. */
const SECRET_NAME = /^(?!\w*_FILE$)\w*(KEY|ADMIN|TOKEN|SECRET|PASSWORD|PASSWD|AUTH)\w*$/;

/** The variables a doc fills with a secret: typed silently (`read -s`), or read from a secret file. */
function secretVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/\bread\s+-\w*s\w*\s+([A-Za-z_]\w*)/g)) names.add(m[1] as string);
  for (const m of text.matchAll(/\b([A-Za-z_]\w*)="?\$\([^)\n]*(?:\/run\/secrets\/|config get)/g)) {
    names.add(m[1] as string);
  }
  return names;
}

/**
 * The shell a doc shows: in Markdown the lines of fenced blocks and the `code spans` of prose (which
 * may wrap), elsewhere (YAML, whose comments hold commands) every line, uncommented; continued lines
 * joined.
 */
function shellSnippets(text: string, markdown: boolean): string[] {
  const joined = text.replace(/\\\n/g, ' ');
  if (!markdown) return joined.split('\n').map((line) => line.replace(/^\s*#/, ''));
  const snippets: string[] = [];
  let prose = '';
  let fenced = false;
  for (const line of joined.split('\n')) {
    if (line.trimStart().startsWith('```')) fenced = !fenced;
    else if (fenced) snippets.push(line);
    else prose += `${line}\n`;
  }
  for (const m of prose.matchAll(/`([^`]+)`/g)) snippets.push((m[1] as string).replace(/\n/g, ' '));
  return snippets;
}

/**
 * The simple commands of one line of shell, as far as the local shell expands them: single-quoted
 * text and comments dropped, `$(…)` taken out as commands of their own, split at pipes and lists.
 */
function commandsOf(line: string): string[] {
  const commands: string[] = [];
  const outer: Array<{ text: string; quote: string }> = [];
  let text = '';
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote === "'") {
      if (c === "'") quote = '';
    } else if (c === '\\') {
      i++; // an escaped character expands to nothing of interest here
    } else if (c === '$' && line[i + 1] === '(') {
      outer.push({ text, quote });
      text = '';
      quote = '';
      i++;
    } else if (quote === '"') {
      if (c === '"') quote = '';
      else text += c;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && /(^|\s)$/.test(line.slice(0, i))) {
      break;
    } else if (c === ')' && outer.length > 0) {
      commands.push(text);
      ({ text, quote } = outer.pop() as { text: string; quote: string });
    } else if (c === '|' || c === ';' || c === '&') {
      commands.push(text);
      text = '';
    } else {
      text += c;
    }
  }
  commands.push(text, ...outer.map((o) => o.text));
  return commands;
}

/** The snippets of shell in `text` that expand a secret variable into a program's arguments. */
function secretsInArguments(text: string, markdown = true): string[] {
  const snippets = shellSnippets(text, markdown);
  const secret = secretVariables(snippets.join('\n'));
  const isSecret = (name: string) => secret.has(name) || SECRET_NAME.test(name);
  return snippets.filter((snippet) =>
    commandsOf(snippet).some((command) => {
      const program = command.match(PROGRAMS);
      if (!program) return false;
      const args = command.slice((program.index ?? 0) + program[0].length);
      return [...args.matchAll(/\$\{?([A-Za-z_]\w*)/g)].some((m) => isSecret(m[1] as string));
    }),
  );
}

describe('the docs never put a secret in a command line', () => {
  it('tells a secret in arguments from one piped, or passed through the environment', () => {
    const code = [
      'curl -sN https://$DOMAIN/v1/chat/completions -H "Authorization: Bearer $KEY" \\',
      "  -H 'content-type: application/json'",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell's ${NAME}, not a template
      'curl -s https://DOMAIN/admin/v1/users -H "api-key: ${ADMIN_KEY}"',
      `docker exec "$APP" node -e "fetch(u,{headers:{authorization:'Bearer '+process.argv[1]}})" "$KEY"`,
      'docker exec -e KEY=$KEY "$APP" printenv KEY',
      'OLD=$(docker exec "$APP" cat /run/secrets/encryption-key)',
      'docker run --rm -e ENCRYPTION_KEY_PREVIOUS="$OLD" gpt-proxy-app node dist/scripts/x.js',
      'node scripts/check.ts --key "$UPSTREAM_KEY"',
      // Not in any program's arguments:
      'read -rs KEY   # a proxy key, not: curl -H "Authorization: Bearer $KEY"',
      `printf 'Authorization: Bearer %s\\n' "$KEY" | curl -s -H @- https://x/v1/models`,
      `admin() { printf 'Authorization: Bearer %s\\n' "$ADMIN" | curl -s -H @- "$@"; }`,
      'KEY="$KEY" docker exec -e KEY "$APP" node -e "fetch(u,{headers:{authorization:process.env.KEY}})"',
      'export POSTGRES_PASSWORD="$(docker exec gpt-proxy-$STACK-postgres cat /run/secrets/postgres-password)"',
      'docker run --rm -e POSTGRES_PASSWORD -e ENCRYPTION_KEY gpt-proxy-app node dist/scripts/x.js',
      `redis_() { docker exec r sh -c 'read -r REDISCLI_AUTH < "$REDIS_PASSWORD_FILE" && exec redis-cli "$@"' redis-cli "$@"; }`,
      'curl -fsS https://$DOMAIN/health',
    ];
    const prose = [
      'To enable it: `curl -X PATCH https://$DOMAIN/x -H "Authorization: Bearer',
      '$ADMIN_KEY"`, or `bearer "$ADMIN_KEY" | curl -X PATCH https://$DOMAIN/x -H @-',
      "-d '{}'`. The admin's key is not for docker or curl as $ADMIN_KEY, which `ps` shows.",
    ];
    const doc = ['```sh', ...code, '```', ...prose].join('\n');
    assert.deepEqual(secretsInArguments(doc), [
      `${code[0]?.slice(0, -1)} ${code[1]}`,
      code[2],
      code[3],
      code[4],
      code[6],
      code[7],
      'curl -X PATCH https://$DOMAIN/x -H "Authorization: Bearer $ADMIN_KEY"',
    ]);
    // A stack file's comment is read as the command it shows.
    const yaml = '#   curl -H "Authorization: Bearer $TOKEN" https://x\nkey: value # $TOKEN';
    assert.deepEqual(secretsInArguments(yaml, false), [
      '   curl -H "Authorization: Bearer $TOKEN" https://x',
    ]);
  });

  for (const doc of DOCS) {
    it(doc, () => {
      const text = readFileSync(new URL(`../../${doc}`, import.meta.url), 'utf8');
      assert.deepEqual(secretsInArguments(text, doc.endsWith('.md')), []);
    });
  }
});

describe('the docs never put a secret on the pulumi command line', () => {
  it('tells a value in argv from the prompt and stdin forms', () => {
    assert.deepEqual(
      secretsOnCommandLine(
        [
          "pulumi config set --secret openaiApiKeys 'sk-a,sk-b'",
          'pulumi config set --secret encryptionKey "$(openssl rand -hex 32)"',
          'pulumi config set openaiApiKeys sk-a --secret',
          'pulumi config set --secret openaiApiKeys   # prompts for sk-a,sk-b',
          'printf %s "$OLD" | pulumi config set --secret encryptionKeyPrevious',
          'pulumi config set --secret openaiApiKeys < keys.txt',
          'Set `pulumi config set --secret azureApiKeys`. The keys',
          'pulumi config set backupRetention 14',
        ].join('\n'),
      ),
      [
        "pulumi config set --secret openaiApiKeys 'sk-a,sk-b'",
        'pulumi config set --secret encryptionKey "$(openssl rand -hex 32)"',
        'pulumi config set openaiApiKeys sk-a --secret',
      ],
    );
  });

  for (const doc of DOCS) {
    it(doc, () => {
      const text = readFileSync(new URL(`../../${doc}`, import.meta.url), 'utf8');
      assert.deepEqual(secretsOnCommandLine(text), []);
    });
  }
});
