import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { groups } from './groups';
import {
  prepareTimed,
  type PreparedCase,
  type RunOptions,
  type TimedCase,
  type TimedResult,
} from './harness';

/**
 * Timed cases in a process of their own each, driven round by round from the main process.
 *
 * Cases that share a process bias each other (call-site and inline-cache state, garbage): the
 * same code measured second in a process reads up to a quarter slower. One process per case, with
 * the rounds still interleaved across the processes, keeps the load the same for every case and
 * the ratios honest. Groups marked `shareProcess` (cases that hold a connection or a server) run in
 * the main process as before.
 */
export class IsolatedCase {
  private readonly child: ChildProcess;
  private readonly lines: Interface;
  private readonly waiting: Array<(line: string) => void> = [];

  constructor(group: string, caseId: string, quick: boolean) {
    const script = fileURLToPath(import.meta.url);
    this.child = spawn(
      process.execPath,
      ['--expose-gc', script, '--worker', `${group}\n${caseId}`, ...(quick ? ['--quick'] : [])],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.lines = createInterface({ input: this.child.stdout! });
    this.lines.on('line', (line) => this.waiting.shift()?.(line));
    this.child.on('exit', () => {
      for (const resolve of this.waiting.splice(0)) resolve('{"error":"the case process exited"}');
    });
  }

  private ask(command: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin!.write(`${command}\n`);
    });
  }

  /** Warms up and calibrates in the child. */
  async prepare(): Promise<void> {
    expectOk(await this.ask('prepare'));
  }

  async round(): Promise<void> {
    expectOk(await this.ask('round'));
  }

  async result(): Promise<TimedResult> {
    const reply = JSON.parse(await this.ask('result')) as { error?: string; result?: TimedResult };
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.result!;
  }

  close(): void {
    this.lines.close();
    this.child.stdin!.end();
  }
}

function expectOk(line: string): void {
  const reply = JSON.parse(line) as { error?: string };
  if (reply.error !== undefined) throw new Error(reply.error);
}

/** The child side: sets up one group, prepares one case, answers the parent's commands. */
export async function serveCase(spec: string, options: RunOptions): Promise<void> {
  const [groupName, caseId] = spec.split('\n');
  const group = groups.find((g) => g.name === groupName);
  const instance = await group!.setup();
  const c = instance.cases.find((x) => x.id === caseId) as TimedCase | undefined;
  let prepared: PreparedCase | undefined;
  const reply = (value: object): void => {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  };
  const input = createInterface({ input: process.stdin });
  for await (const command of input) {
    try {
      if (c === undefined) throw new Error(`no case ${spec}`);
      if (command === 'prepare') {
        prepared = await prepareTimed(c, options);
        reply({});
      } else if (command === 'round') {
        await prepared!.round();
        reply({});
      } else if (command === 'result') {
        reply({ result: prepared!.result() });
        break;
      }
    } catch (error) {
      reply({ error: error instanceof Error ? error.message : String(error) });
      break;
    }
  }
  input.close();
  await instance.teardown?.();
}
