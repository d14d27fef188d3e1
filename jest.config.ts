/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      target: 'es2022',
      transform: { legacyDecorator: true, decoratorMetadata: true },
    },
    module: { type: 'commonjs' },
  },
] as const;

const config: Config = {
  testEnvironment: 'node',
  roots: [
    '<rootDir>/packages',
    '<rootDir>/examples',
    '<rootDir>/bench',
    '<rootDir>/reliability',
    '<rootDir>/test',
  ],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': swc as unknown as [string, Record<string, unknown>] },
  moduleNameMapper: {
    '^@breakwater/core/testing$': '<rootDir>/packages/core/src/testing.ts',
    '^@breakwater/nestjs/(terminus|throttler)$': '<rootDir>/packages/nestjs/src/$1.ts',
    '^@breakwater/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // NestJS 12 ships ES modules only: transform it like our sources.
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/[^/]+/node_modules/)?@nestjs/)'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 20_000,
};

export default config;
