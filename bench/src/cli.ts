/** Command-line options of `pnpm bench`. */
export interface CliOptions {
  json: boolean;
  quick: boolean;
  /** Case-insensitive substring matched against `group/id` and the case label. */
  filter: string | undefined;
  /** Run each case's rounds back to back instead of interleaving the rounds of all cases. */
  sequential: boolean;
  /** Time every case in the main process instead of one process per case. */
  oneProcess: boolean;
  /** Internal: serve one case (`group\ncase`) to the main process over stdin/stdout. */
  worker: string | undefined;
  help: boolean;
}

export const usage = `Usage: pnpm bench [--quick] [--json] [--filter <substring>] [--sequential] [--one-process]

  --quick            short run (fewer calls and rounds; numbers are rougher)
  --json             one JSON object per case on stdout (progress goes to stderr)
  --filter <text>    only cases whose "group/id" or label contains <text>
                     (cases they are compared with run too)
  --sequential       run all rounds of a case before the next case starts (default:
                     every case is warmed up, then each round runs every case in turn)
  --one-process      time every case in this process (default: each timed case runs in a
                     process of its own, rounds still interleaved, so cases cannot bias each
                     other's timings; cases that hold Redis connections always share one)
  --help             this text

Redis cases run when BREAKWATER_BENCH_REDIS_URL is set or a redis-server binary is on the PATH.`;

/** Parses argv (without node and the script); throws on an unknown or incomplete option. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = {
    json: false,
    quick: false,
    filter: undefined,
    sequential: false,
    oneProcess: false,
    worker: undefined,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue;
    if (arg === '--json') options.json = true;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--sequential') options.sequential = true;
    else if (arg === '--one-process') options.oneProcess = true;
    else if (arg === '--worker') options.worker = argv[++i];
    else if (arg === '--help' || arg === '-h') options.help = true;
    else if (arg === '--filter' || arg.startsWith('--filter=')) {
      const value = arg === '--filter' ? argv[++i] : arg.slice('--filter='.length);
      if (value === undefined || value === '') throw new Error('--filter needs a value');
      options.filter = value;
    } else {
      throw new Error(`unknown option ${JSON.stringify(arg)}`);
    }
  }
  return options;
}
