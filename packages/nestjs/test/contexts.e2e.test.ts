import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import {
  Injectable,
  UseFilters,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import request from 'supertest';
import { io, type Socket } from 'socket.io-client';
import {
  BreakwaterExceptionFilter,
  BreakwaterModule,
  RateLimit,
  RateLimitGuard,
  SkipRateLimit,
  type RateLimitRequestResponse,
} from '../src';
import { ManualClock, createApp, httpServer, platforms } from './helpers';

@Resolver()
class PlantResolver {
  @RateLimit('2/m')
  @Query(() => String)
  plant(): string {
    return 'rose';
  }

  @SkipRateLimit()
  @Query(() => String)
  free(): string {
    return 'free';
  }
}

// Nest applies global filters to HTTP only: a gateway names its filters itself.
@UseFilters(BreakwaterExceptionFilter)
@WebSocketGateway()
class PingGateway {
  @RateLimit('2/m')
  @SubscribeMessage('ping')
  ping(): string {
    return 'pong';
  }
}

describe.each(platforms)('RateLimitGuard on GraphQL (Apollo) on %s', (platform) => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('limits a resolver, with the headers on the HTTP response and a 429 GraphQL error', async () => {
    const clock = new ManualClock(0);
    app = await createApp(platform, {
      imports: [
        BreakwaterModule.forRoot({ rateLimit: { defaults: { clock } } }),
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ApolloDriver,
          autoSchemaFile: true,
          // Express: the driver's default context ({ req }) is enough; Fastify passes the reply.
          ...(platform === 'fastify'
            ? { context: (req: unknown, reply: unknown) => ({ req, reply }) }
            : {}),
        }),
      ],
      providers: [PlantResolver, { provide: APP_GUARD, useClass: RateLimitGuard }],
    });
    const server = httpServer(app);
    const query = (name: string) =>
      request(server)
        .post('/graphql')
        .send({ query: `{ ${name} }` });
    const first = await query('plant').expect(200);
    expect(first.body).toEqual({ data: { plant: 'rose' } });
    expect(first.headers['ratelimit-policy']).toBe('"PlantResolver.plant";q=2;w=60');
    await query('plant').expect(200);
    const refused = await query('plant');
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.body).toMatchObject({
      data: null,
      errors: [
        {
          path: ['plant'],
          extensions: {
            status: 429,
            originalError: { status: 429, limiter: 'PlantResolver.plant', retryAfter: 60 },
          },
        },
      ],
    });
    for (let i = 0; i < 3; i++) await query('free').expect(200, { data: { free: 'free' } });
  });
});

/** Counts each Socket.IO user (from the handshake's auth) apart, through the documented hook. */
@Injectable()
class UserRateLimitGuard extends RateLimitGuard {
  protected override getRequestResponse(
    context: ExecutionContext,
  ): RateLimitRequestResponse | undefined {
    const client = context.switchToWs().getClient<{
      handshake: { headers: Record<string, string>; auth: { user?: string } };
    }>();
    return { req: { headers: client.handshake.headers, ip: client.handshake.auth.user } };
  }
}

describe.each(platforms)('RateLimitGuard on a Socket.IO gateway on %s', (platform) => {
  let app: INestApplication | undefined;
  let socket: Socket | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    socket?.disconnect();
    for (const s of sockets.splice(0)) s.disconnect();
    await app?.close();
    app = undefined;
  });

  async function connect(auth: Record<string, string> = {}): Promise<Socket> {
    const { port } = httpServer(app!).address() as AddressInfo;
    const client = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], auth });
    sockets.push(client);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    return client;
  }

  it('takes the key from an overridden getRequestResponse()', async () => {
    app = await createApp(
      platform,
      {
        imports: [BreakwaterModule.forRoot()],
        providers: [PingGateway, { provide: APP_GUARD, useClass: UserRateLimitGuard }],
      },
      (a) => a.useWebSocketAdapter(new IoAdapter(a)),
    );
    await app.listen(0, '127.0.0.1');
    const ann = await connect({ user: 'ann' });
    const bob = await connect({ user: 'bob' });
    for (const client of [ann, bob, ann, bob]) {
      await expect(client.emitWithAck('ping')).resolves.toBe('pong');
    }
    const refused = new Promise<unknown>((resolve) => ann.once('exception', resolve));
    ann.emit('ping');
    await expect(refused).resolves.toMatchObject({ status: 429 });
  });

  it('limits a message handler by client address and answers with the exception event', async () => {
    const clock = new ManualClock(0);
    app = await createApp(
      platform,
      {
        imports: [BreakwaterModule.forRoot({ rateLimit: { defaults: { clock } } })],
        providers: [PingGateway, { provide: APP_GUARD, useClass: RateLimitGuard }],
      },
      (a) => a.useWebSocketAdapter(new IoAdapter(a)),
    );
    await app.listen(0, '127.0.0.1');
    const { port } = httpServer(app).address() as AddressInfo;
    socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'] });
    const client = socket;
    const exceptions: unknown[] = [];
    client.on('exception', (data: unknown) => exceptions.push(data));
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));

    await expect(client.emitWithAck('ping')).resolves.toBe('pong');
    await expect(client.emitWithAck('ping')).resolves.toBe('pong');
    const refused = new Promise<unknown>((resolve) => client.once('exception', resolve));
    client.emit('ping', () => exceptions.push('answered'));
    await expect(refused).resolves.toMatchObject({
      status: 429,
      limiter: 'PingGateway.ping',
      retryAfter: 60,
    });
    clock.advance(60_000);
    await expect(client.emitWithAck('ping')).resolves.toBe('pong');
    expect(exceptions).toHaveLength(1);
  });
});
