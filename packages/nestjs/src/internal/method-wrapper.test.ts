import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { bind, ownerOf, tagInstance, wrapMethod } from './method-wrapper';

class Base {
  constructor(readonly id: string) {}
  greet(greeting: string): string {
    return `${greeting} ${this.id}`;
  }
}
class Child extends Base {}
Reflect.defineMetadata('route', '/greet', Base.prototype.greet);

describe('wrapMethod', () => {
  it('wraps once, keeps name and metadata, and calls the original without bindings', () => {
    const original = Base.prototype.greet;
    const state = wrapMethod(Base.prototype, 'greet');
    const wrapper = Base.prototype.greet;
    expect(wrapper).not.toBe(original);
    expect(wrapper.name).toBe('greet');
    expect(Reflect.getMetadata('route', wrapper)).toBe('/greet');
    expect(state.original).toBe(original);
    expect(wrapMethod(Base.prototype, 'greet')).toBe(state);
    expect(Base.prototype.greet).toBe(wrapper);
    expect(new Child('c').greet('hi')).toBe('hi c');
  });

  it('calls the latest binding, or the one of the application an instance is tagged with', () => {
    const state = wrapMethod(Base.prototype, 'greet');
    const first = {};
    const second = {};
    const calls: string[] = [];
    const unbindFirst = bind(state, {
      app: first,
      invoke: (self, args) => {
        calls.push(`first:${(self as Base).id}:${String(args[0])}`);
        return 'first';
      },
    });
    const unbindSecond = bind(state, { app: second, invoke: () => 'second' });
    const tagged = new Child('t');
    tagInstance(tagged, first);
    expect(tagged.greet('yo')).toBe('first');
    expect(new Child('u').greet('yo')).toBe('second');
    expect(calls).toEqual(['first:t:yo']);
    unbindSecond();
    expect(new Child('u').greet('yo')).toBe('first');
    unbindFirst();
    expect(new Child('u').greet('yo')).toBe('yo u');
  });

  it('finds the prototype that owns a method and refuses non-methods', () => {
    expect(ownerOf(Child.prototype, 'greet')).toBe(Base.prototype);
    expect(ownerOf(Child.prototype, 'missing')).toBeUndefined();
    expect(() => wrapMethod(Child.prototype, 'greet')).toThrow(/not a method/);
  });

  it('skips frozen instances when tagging', () => {
    const frozen = Object.freeze(new Base('f'));
    expect(() => tagInstance(frozen, {})).not.toThrow();
  });
});
