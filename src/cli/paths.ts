/**
 * Files of the installed package the command uses. This module is compiled to
 * dist/cli/paths.js, two levels below the package root.
 * @internal
 */
import { readFileSync } from 'node:fs';

/** The package root (where package.json is), as a file URL ending in '/'. */
export const packageRoot = new URL('../../', import.meta.url);

/** A file of the package, such as `bench/ipc.js`. */
export function packageFile(path: string): URL {
  return new URL(path, packageRoot);
}

/** The version in package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;
}
