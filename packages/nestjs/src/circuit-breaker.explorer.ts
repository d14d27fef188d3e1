import {
  Inject,
  Injectable,
  type OnModuleDestroy,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import {
  BREAKWATER_STATE,
  BULKHEAD_METADATA,
  CIRCUIT_BREAKER_METADATA,
  RATE_LIMIT_METADATA,
  RETRY_METADATA,
  TIMEOUT_METADATA,
} from './breakwater.constants';
import type { BreakwaterState } from './internal/breakwater-state';
import { methodBinding, type MethodPolicies } from './internal/method-policies';
import { bind, ownerOf, tagInstance, wrapMethod } from './internal/method-wrapper';
import { RateLimitRoutes } from './internal/rate-limit-routes';
import type { RateLimitOptions } from './rate-limit.decorator';

/**
 * Metadata keys that make a method a handler `RateLimitGuard` runs for: Nest's route path
 * (`@Get()`...), a gateway's `@SubscribeMessage()`, a GraphQL `@Query()`/`@Mutation()`/
 * `@ResolveField()`, a microservice `@MessagePattern()`/`@EventPattern()`. Read by value so that
 * only package entry points are imported (and the optional packages need not be installed).
 */
const HANDLER_METADATA = [
  'path',
  'websockets:message_mapping',
  'graphql:resolver_type',
  'microservices:pattern',
];

function isHandler(method: object): boolean {
  return HANDLER_METADATA.some((key) => Reflect.hasMetadata(key, method));
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Finds methods with `@Retry()`, `@CircuitBreaker()`, `@RateLimit()` (not on handlers: the guard
 * limits those), `@Timeout()` or `@Bulkhead()` and wraps each once, binding it to this
 * application's policies. It runs while Nest creates providers, before routes are registered, so
 * a controller route calls the protected method; `onModuleInit` covers instances from factories
 * and values. Also builds the limits of every handler (route, resolver, gateway) at bootstrap.
 */
@Injectable()
export class BreakwaterExplorer implements OnModuleInit, OnModuleDestroy {
  private readonly bound = new Set<object>();
  private readonly unbinds: (() => void)[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(BREAKWATER_STATE) private readonly state: BreakwaterState,
    routes: RateLimitRoutes,
  ) {
    for (const wrapper of [...discovery.getControllers(), ...discovery.getProviders()]) {
      if (!wrapper.isNotMetatype) this.explore((wrapper.metatype as Type).prototype as object);
    }
    for (const wrapper of [...discovery.getControllers(), ...discovery.getProviders()]) {
      if (wrapper.isNotMetatype) continue;
      const type = wrapper.metatype as Type;
      const prototype = type.prototype as Record<string, Method> | undefined;
      if (prototype === undefined) continue;
      for (const key of scanner.getAllMethodNames(prototype)) {
        const handler = prototype[key]!;
        if (isHandler(handler)) routes.resolve(handler, type);
      }
    }
  }

  onModuleInit(): void {
    for (const wrapper of [...this.discovery.getControllers(), ...this.discovery.getProviders()]) {
      if (wrapper.isTransient || !wrapper.isDependencyTreeStatic()) continue;
      const instance: unknown = wrapper.instance;
      if (typeof instance !== 'object' || instance === null) continue;
      if (this.explore(Object.getPrototypeOf(instance) as object | null))
        tagInstance(instance, this);
    }
  }

  async onModuleDestroy(): Promise<void> {
    for (const unbind of this.unbinds.splice(0)) unbind();
    await this.state.close();
  }

  /** Wraps the decorated methods of `prototype`; returns whether it has any. */
  private explore(prototype: object | null): boolean {
    if (prototype === null || prototype === Object.prototype) return false;
    let found = false;
    for (const key of this.scanner.getAllMethodNames(prototype)) {
      const method = (prototype as Record<string, Method>)[key]!;
      const policies = this.policiesOf(method);
      if (policies === undefined) continue;
      found = true;
      const owner = ownerOf(prototype, key)!;
      const wrapped = wrapMethod(owner, key);
      if (this.bound.has(wrapped)) continue;
      this.bound.add(wrapped);
      const binding = methodBinding(
        this,
        this.state,
        prototype,
        owner,
        key,
        wrapped.original,
        policies,
      );
      this.unbinds.push(bind(wrapped, binding));
    }
    return found;
  }

  /** The policy decorators of a method, or `undefined` when it has none. */
  private policiesOf(method: Method): MethodPolicies | undefined {
    const read = <T>(key: string): T | undefined => this.reflector.get<T | undefined>(key, method);
    const isRoute = isHandler(method);
    const policies: MethodPolicies = {
      retry: read(RETRY_METADATA),
      breaker: read(CIRCUIT_BREAKER_METADATA),
      rateLimits: isRoute ? undefined : read<RateLimitOptions[]>(RATE_LIMIT_METADATA),
      timeout: read(TIMEOUT_METADATA),
      bulkhead: read(BULKHEAD_METADATA),
    };
    return Object.values(policies).some((value) => value !== undefined) ? policies : undefined;
  }
}
