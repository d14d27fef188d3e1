import { parseArgs, usage, type CliOptions } from './cli';
import { environment, headerLine } from './env';
import { groups } from './groups';
import {
  fullRun,
  measureMemory,
  prepareTimed,
  quickRun,
  type Case,
  type GroupInstance,
  type PreparedCase,
  type RunOptions,
  type TimedCase,
  type TimedResult,
} from './harness';
import { IsolatedCase, serveCase } from './isolate';
import { caseKey, comparisonsOf, jsonLine, renderReport, type Measured } from './report';

type Log = (line: string) => void;

function matches(filter: string | undefined, group: string, c: Case): boolean {
  if (filter === undefined) return true;
  const needle = filter.toLowerCase();
  return (
    caseKey(group, c.id).toLowerCase().includes(needle) || c.label.toLowerCase().includes(needle)
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface LiveGroup {
  index: number;
  instance: GroupInstance;
}

/** Sets up every group that can run here; a group that fails to set up is reported and left out. */
async function setUpGroups(log: Log): Promise<LiveGroup[]> {
  const live: LiveGroup[] = [];
  for (const [index, group] of groups.entries()) {
    const reason = await group.unavailable?.();
    if (reason !== undefined) {
      log(`skip ${group.name}: ${reason}`);
      continue;
    }
    try {
      live.push({ index, instance: await group.setup() });
    } catch (error) {
      log(`skip ${group.name}: setup failed: ${errorText(error)}`);
    }
  }
  return live;
}

/** The cases to run: those matching --filter, plus the cases they are compared with. */
function plan(live: readonly LiveGroup[], filter: string | undefined): Measured[] {
  const all: Measured[] = live.flatMap(({ index, instance }) =>
    instance.cases.map((c, caseIndex) => ({
      group: groups[index]!.name,
      order: [index, caseIndex] as [number, number],
      case: c,
      referenceOnly: !matches(filter, groups[index]!.name, c),
    })),
  );
  const selected = all.filter((m) => !m.referenceOnly);
  const needed = new Set(selected.flatMap((m) => comparisonsOf(m, all).map((c) => c.vs)));
  return all.filter((m) => !m.referenceOnly || needed.has(caseKey(m.group, m.case.id)));
}

/**
 * Times the cases. Interleaved (default): every case is warmed up first, then each round runs
 * one batch of every case in turn, so a change in the machine's load hits every case alike.
 * Sequential: each case is warmed up and runs all its rounds before the next one starts.
 */
async function runTimed(
  cases: readonly Measured[],
  options: RunOptions,
  interleaved: boolean,
  isolate: (m: Measured) => IsolatedCase | undefined,
  log: Log,
): Promise<void> {
  const prepared = new Map<Measured, Pick<PreparedCase, 'round' | 'result'>>();
  const results = new Map<Measured, TimedResult>();
  const isolated: IsolatedCase[] = [];
  const isolateOf = new Map<Measured, IsolatedCase>();
  const prepare = async (m: Measured): Promise<void> => {
    log(`warm up ${caseKey(m.group, m.case.id)}`);
    try {
      const child = isolate(m);
      if (child === undefined) {
        prepared.set(m, await prepareTimed(m.case as TimedCase, options));
        return;
      }
      isolated.push(child);
      isolateOf.set(m, child);
      await child.prepare();
      prepared.set(m, {
        round: () => child.round(),
        result: () => {
          const result = results.get(m);
          if (result === undefined) throw new Error('no result from the case process');
          return result;
        },
      });
    } catch (error) {
      m.error = errorText(error);
    }
  };
  const round = async (m: Measured): Promise<void> => {
    const p = prepared.get(m);
    if (!p) return;
    try {
      await p.round();
    } catch (error) {
      m.error = errorText(error);
      prepared.delete(m);
    }
  };

  if (cases.length === 0) return;
  if (interleaved) {
    for (const m of cases) await prepare(m);
    for (let r = 1; r <= options.rounds; r++) {
      log(`round ${r}/${options.rounds}`);
      for (const m of cases) await round(m);
    }
  } else {
    for (const m of cases) {
      await prepare(m);
      for (let r = 0; r < options.rounds; r++) await round(m);
    }
  }
  for (const [m, p] of prepared) {
    const child = isolateOf.get(m);
    try {
      if (child !== undefined) results.set(m, await child.result());
      m.result = p.result();
    } catch (error) {
      m.error = errorText(error);
    }
  }
  for (const child of isolated) child.close();
}

async function run(cli: CliOptions): Promise<number> {
  const options = cli.quick ? quickRun : fullRun;
  const env = environment(
    cli.quick ? 'quick' : 'full',
    cli.sequential ? 'sequential' : 'interleaved',
  );
  // With --json, stdout carries JSON lines only; everything else goes to stderr.
  const log: Log = (line) => {
    process.stderr.write(`${line}\n`);
  };
  const header = headerLine(env);
  if (cli.json) log(header);
  else process.stdout.write(`${header}\n\n`);

  const started = process.hrtime.bigint();
  const live = await setUpGroups(log);
  const all = plan(live, cli.filter);
  try {
    await runTimed(
      all.filter((m) => m.case.kind === 'async' || m.case.kind === 'sync'),
      options,
      !cli.sequential,
      (m) =>
        cli.oneProcess || groups[m.order[0]]!.shareProcess === true
          ? undefined
          : new IsolatedCase(m.group, m.case.id, cli.quick),
      log,
    );
    for (const m of all) {
      if (m.case.kind !== 'memory') continue;
      log(`measure ${caseKey(m.group, m.case.id)}`);
      try {
        m.result = await measureMemory(m.case, options);
      } catch (error) {
        m.error = errorText(error);
      }
    }
    for (const m of all) {
      if (m.case.kind !== 'external') continue;
      log(`measure ${caseKey(m.group, m.case.id)}`);
      try {
        m.result = await m.case.measure(options);
      } catch (error) {
        m.error = errorText(error);
      }
    }
  } finally {
    for (const { index, instance } of live) {
      try {
        await instance.teardown?.();
      } catch (error) {
        log(`teardown of ${groups[index]!.name} failed: ${errorText(error)}`);
      }
    }
  }

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`done in ${seconds.toFixed(1)} s`);
  if (all.length === 0) {
    log(`no case matches --filter ${JSON.stringify(cli.filter)}`);
    return 1;
  }

  if (cli.json) {
    for (const m of all) process.stdout.write(`${jsonLine(m, all, env)}\n`);
  } else {
    process.stdout.write(`${renderReport(all)}\n\n`);
    for (const [index, group] of groups.entries()) {
      if (all.some((m) => m.order[0] === index)) {
        process.stdout.write(`${group.name}: ${group.description}\n`);
      }
    }
    const external = all.some((m) => m.case.kind === 'external');
    process.stdout.write(`\n${footnote(env.loadCorrected, external)}\n`);
  }
  return all.some((m) => m.error !== undefined) ? 1 : 0;
}

function footnote(loadCorrected: boolean, external: boolean): string {
  const lines = [
    loadCorrected
      ? 'ns/op: median over the rounds of (wall time - time the main thread waited for a CPU) per op;'
      : 'ns/op: median over the rounds of the wall time per op;',
    'ops/s = 1e9 / ns/op; ±% = median absolute deviation of the rounds; ratio = ns/op (memory: bytes)',
    'of the row ÷ that of the named case. Each timed case runs in a process of its own (Redis cases',
    'share one; --one-process for all in one), rounds interleaved. Numbers are indicative: they',
    'depend on whatever else the machine is doing at the time.',
  ];
  if (external) {
    lines.push(
      'Tables with their own columns (req/s, ...) come from the case itself; there, ratio = the',
      "row's measure ÷ that of the named case, and the header says whether higher is better.",
    );
  }
  return lines.join('\n');
}

let cli: CliOptions;
try {
  cli = parseArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${errorText(error)}\n\n${usage}\n`);
  process.exit(2);
}
if (cli.help) {
  process.stdout.write(`${usage}\n`);
} else if (cli.worker !== undefined) {
  await serveCase(cli.worker, cli.quick ? quickRun : fullRun);
} else {
  process.exitCode = await run(cli);
}
