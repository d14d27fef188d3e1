import { spawn } from 'node:child_process';

/** Child processes of the pack tests: run with a time limit, output collected. */

/** How a command ended, and what it printed. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in `cwd`, killed after `timeoutMs`; resolves with its exit code and output. */
export function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv = isolated(),
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The environment of the child processes as a user's shell has it: without `NODE_PATH` (pnpm's
 * launcher sets it to the monorepo's package store, which would let a consumer resolve packages
 * it never installed) and without the `npm_config_*` settings pnpm passes to what it runs (npm
 * warns about the ones it does not know).
 */
export function isolated(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => name !== 'NODE_PATH' && !/^(npm|pnpm)_config_/i.test(name),
    ),
  );
  return { ...env, ...extra };
}

/** Fails with the command's output when it did not exit with 0. */
export function expectSuccess(what: string, ran: Ran): void {
  if (ran.code !== 0) {
    throw new Error(
      `${what} exited with ${ran.code}:\n${ran.stdout.slice(-4_000)}\n${ran.stderr.slice(-4_000)}`,
    );
  }
}
