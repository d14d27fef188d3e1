import { defineConfig } from 'tsup';

export default defineConfig({
  // The terminus and throttler bridges are separate entries, so the main entry never loads
  // those optional peers.
  entry: ['src/index.ts', 'src/terminus.ts', 'src/throttler.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
});
