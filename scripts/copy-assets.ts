// Copies the non-TypeScript files the compiled programs read at run time into dist/:
// SQL migrations, the rate limiter's Lua scripts and the admin console.
import { cpSync } from 'node:fs';

cpSync('app/src/db/migrations', 'dist/app/src/db/migrations', { recursive: true });
cpSync('app/src/ratelimit', 'dist/app/src/ratelimit', {
  recursive: true,
  filter: (src) => !src.endsWith('.ts'),
});
// The admin console's static files, served by the app at /admin/.
cpSync('app/console', 'dist/app/console', { recursive: true });
