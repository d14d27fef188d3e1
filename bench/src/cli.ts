/** Command-line options of `pnpm bench`. */
export interface CliOptions {
  json: boolean;
  quick: boolean;
  /** Case-insensitive substring matched against `group/id` and the case label. */
  filter: string | undefined;
  /** Run each case's rounds back to back instead of interleaving the rounds of all cases. */
  sequential: boolean;
  help: boolean;
}

export const usage = `Usage: pnpm bench [--quick] [--json] [--filter <substring>] [--sequential]

  --quick            short run (fewer calls and rounds; numbers are rougher)
  --json             one JSON object per case on stdout (progress goes to stderr)
  --filter <text>    only cases whose "group/id" or label contains <text>
                     (cases they are compared with run too)
  --sequential       run all rounds of a case before the next case starts (default:
                     every case is warmed up, then each round runs every case in turn)
  --help             this text

Redis cases run when BREAKWATER_BENCH_REDIS_URL is set or a redis-server binary is on the PATH.`;

/** Parses argv (without node and the script); throws on an unknown or incomplete option. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = {
    json: false,
    quick: false,
    filter: undefined,
    sequential: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue;
    if (arg === '--json') options.json = true;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--sequential') options.sequential = true;
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
