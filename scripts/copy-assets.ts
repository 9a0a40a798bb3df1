// Copies the non-TypeScript files the compiled programs read at run time (SQL migrations) into dist/.
import { cpSync } from 'node:fs';

cpSync('app/src/db/migrations', 'dist/app/src/db/migrations', { recursive: true });
