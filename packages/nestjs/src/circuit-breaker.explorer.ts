import {
  Inject,
  Injectable,
  type OnModuleDestroy,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { BREAKWATER_STATE, CIRCUIT_BREAKER_METADATA } from './breakwater.constants';
import type { CircuitBreakerDecoratorOptions } from './circuit-breaker.decorator';
import type { BreakwaterState } from './internal/breakwater-state';
import { breakerBinding } from './internal/breaker-binding';
import { bind, ownerOf, tagInstance, wrapMethod } from './internal/method-wrapper';
import { RateLimitRoutes } from './internal/rate-limit-routes';

/**
 * The metadata key under which Nest's route decorators (`@Get()`, `@Post()`...) store a handler's
 * path; `PATH_METADATA` in Nest, read here by value so that only package entry points are imported.
 */
const PATH_METADATA = 'path';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Finds `@CircuitBreaker()` methods and wraps each once, binding it to this application's
 * registry. It runs while Nest creates providers, before routes are registered, so a controller
 * route calls the protected method; `onModuleInit` covers instances from factories and values.
 * Also builds the limiter of every `@RateLimit()` route at bootstrap.
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
    for (const wrapper of discovery.getControllers()) {
      if (wrapper.isNotMetatype) continue;
      const type = wrapper.metatype as Type;
      const prototype = type.prototype as Record<string, Method>;
      for (const key of scanner.getAllMethodNames(prototype)) {
        const handler = prototype[key]!;
        if (Reflect.hasMetadata(PATH_METADATA, handler)) routes.resolve(handler, type);
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
      const options = this.reflector.get<CircuitBreakerDecoratorOptions | undefined>(
        CIRCUIT_BREAKER_METADATA,
        method,
      );
      if (options === undefined) continue;
      found = true;
      const owner = ownerOf(prototype, key)!;
      const wrapped = wrapMethod(owner, key);
      if (this.bound.has(wrapped)) continue;
      this.bound.add(wrapped);
      const binding = breakerBinding(
        this,
        this.state,
        prototype,
        owner,
        key,
        wrapped.original,
        options,
      );
      this.unbinds.push(bind(wrapped, binding));
    }
    return found;
  }
}
