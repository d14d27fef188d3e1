import { createRequire } from 'node:module';
import type { Express } from '../../packages/express/node_modules/@types/express';
import type Koa from '../../packages/koa/node_modules/@types/koa';
import { repoPath } from './paths';

// The frameworks are development dependencies of the adapter packages; the reliability tests
// load the same installs, so they exercise exactly what the adapters' own suites do.
const fromExpress = createRequire(repoPath('packages', 'express', 'package.json'));
const fromKoa = createRequire(repoPath('packages', 'koa', 'package.json'));

export type {
  Express,
  Request,
  Response,
} from '../../packages/express/node_modules/@types/express';
export type { Context } from '../../packages/koa/node_modules/@types/koa';
export type { Koa };

/** A new Express 4 application. */
export function express4(): Express {
  return (fromExpress('express4') as () => Express)();
}

/** A new Express 5 application. */
export function express5(): Express {
  return (fromExpress('express5') as () => Express)();
}

/** A new Koa 2 application that does not log the errors tests provoke. */
export function koa2(): Koa {
  const Application = fromKoa('koa2') as typeof Koa;
  return Object.assign(new Application(), { silent: true });
}

/** A new Koa 3 application that does not log the errors tests provoke. */
export function koa3(): Koa {
  const Application = fromKoa('koa3') as typeof Koa;
  return Object.assign(new Application(), { silent: true });
}
