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
