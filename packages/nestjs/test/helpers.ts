import 'reflect-metadata';
import type { Server } from 'node:http';
import type { INestApplication, ModuleMetadata } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';

export type PlatformName = 'express' | 'fastify';

/** The platforms every e2e spec runs on: `describe.each(platforms)`. */
export const platforms: [PlatformName][] = [['express'], ['fastify']];

/** Compiles a testing module and starts an application on `platform`. */
export async function createApp(
  platform: PlatformName,
  metadata: ModuleMetadata,
  configure?: (app: INestApplication) => void,
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const adapter =
    platform === 'express' ? new ExpressAdapter() : new FastifyAdapter({ trustProxy: true });
  const app = moduleRef.createNestApplication(adapter, { logger: false });
  if (platform === 'express')
    (app.getHttpAdapter().getInstance() as { set(k: string, v: unknown): void }).set(
      'trust proxy',
      true,
    );
  configure?.(app);
  await app.init();
  if (platform === 'fastify') {
    await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  }
  return app;
}

/** A clock tests move by hand. */
export class ManualClock {
  constructor(public time = 1_000_000) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

/** The application's Node.js server, typed for supertest. */
export function httpServer(app: INestApplication): Server {
  return app.getHttpServer() as Server;
}
