import { cpus, loadavg } from 'node:os';
import { canCorrectForLoad } from './harness';

/** Where and when the numbers were taken; repeated in every JSON line. */
export interface Environment {
  node: string;
  cpu: string;
  cores: number;
  platform: string;
  date: string;
  mode: 'full' | 'quick';
  schedule: 'interleaved' | 'sequential';
  /** Whether ns/op leaves out the time the main thread waited for a CPU (Linux schedstat). */
  loadCorrected: boolean;
  /** One-minute load average when the run started (the machine may be shared). */
  loadAvg: number;
}

export function environment(
  mode: Environment['mode'],
  schedule: Environment['schedule'],
): Environment {
  const list = cpus();
  return {
    node: process.version,
    cpu: list[0]?.model.trim() ?? 'unknown CPU',
    cores: list.length,
    platform: `${process.platform} ${process.arch}`,
    date: new Date().toISOString(),
    mode,
    schedule,
    loadCorrected: canCorrectForLoad,
    loadAvg: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function headerLine(env: Environment): string {
  return (
    `Breakwater bench | Node ${env.node} | ${env.cpu} (${env.cores} cores) | ${env.platform} | ` +
    `${env.date} | ${env.mode} run, ${env.schedule} | load ${env.loadAvg}`
  );
}
