import fc from 'fast-check';

/**
 * Values no option accepts, or accepts only in some places: wrong types, numbers at the edges,
 * strings that look like durations or rates but are not, containers, functions, symbols.
 */
const JUNK: readonly (() => unknown)[] = [
  () => undefined,
  () => null,
  () => NaN,
  () => -0,
  () => 0,
  () => -1,
  () => 0.5,
  () => 1.5,
  () => 2 ** 31,
  () => 2 ** 53,
  () => 1e21,
  () => 1e308,
  () => Infinity,
  () => -Infinity,
  () => Number.MIN_VALUE,
  () => '',
  () => ' ',
  () => '10x',
  () => 'x',
  () => '10',
  () => '1e3',
  () => '-5s',
  () => '0ms',
  () => '0.5ms',
  () => '1.5s',
  () => 'NaNms',
  () => 'Infinitys',
  () => '10 s',
  () => '30d',
  () => '999999999999d',
  () => '100/h',
  () => '0/s',
  () => '5/0m',
  () => '1/0.5ms',
  () => 'constructor',
  () => '__proto__',
  () => true,
  () => false,
  () => [],
  () => [1],
  () => [null],
  () => ({}),
  () => ({ a: { b: [] } }),
  () => () => undefined,
  () => Symbol('junk'),
  () => 10n,
  () => new Date(0),
  () => /x/,
  () => new Map(),
  () => Object.create(null) as object,
];

/** Any value an option should refuse (or, by chance, accept); objects are new at each draw. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.nat({ max: JUNK.length - 1 }).map((i) => JUNK[i]!()) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2, maxKeys: 3 }) },
);

/** A field of an options object: a leaf value, or nested options. */
export type Field = fc.Arbitrary<unknown> | Shape;

/** How a {@link Shape} is generated besides its fields. */
export interface ShapeSettings {
  /** Fields always present in a valid object. */
  required?: readonly string[];
  /** Valid values of another form (a rate string instead of `{ limit, window }`). */
  alternatives?: fc.Arbitrary<unknown>;
  /** Makes a generated object satisfy rules between fields (e.g. "both or neither"). */
  fix?: (options: Record<string, unknown>) => Record<string, unknown>;
}

/** The shape of an options object: its known fields, and what else may stand in its place. */
export class Shape {
  constructor(
    readonly fields: Readonly<Record<string, Field>>,
    readonly settings: ShapeSettings = {},
  ) {}

  /** Valid values of another form, if any. */
  get alternatives(): fc.Arbitrary<unknown> | undefined {
    return this.settings.alternatives;
  }

  /** The same shape with other settings. */
  set(settings: ShapeSettings): Shape {
    return new Shape(this.fields, { ...this.settings, ...settings });
  }

  /** The same shape, also accepting `alternatives` in its place. */
  or(alternatives: fc.Arbitrary<unknown>): Shape {
    return this.set({ alternatives });
  }

  /** The same shape without some fields. */
  without(...names: string[]): Shape {
    const fields = { ...this.fields };
    for (const name of names) delete fields[name];
    const required = this.settings.required?.filter((r) => !names.includes(r));
    return new Shape(fields, { ...this.settings, ...(required ? { required } : {}) });
  }

  /** The same shape with more fields. */
  with(fields: Readonly<Record<string, Field>>, required: readonly string[] = []): Shape {
    return new Shape(
      { ...this.fields, ...fields },
      { ...this.settings, required: [...(this.settings.required ?? []), ...required] },
    );
  }
}

/** Known option names, nested: `true` for a leaf, a tree for nested options, `*` for any key. */
export interface KnownTree {
  [name: string]: KnownTree | true;
}

/** The option names a shape knows, for telling a missing required option from a made-up path. */
export function knownOf(shape: Shape): KnownTree {
  const tree: KnownTree = {};
  for (const [name, field] of Object.entries(shape.fields)) {
    tree[name] = field instanceof Shape ? knownOf(field) : true;
  }
  return tree;
}

/** Known names of a map whose keys are free (registry `breakers`): every key has `shape`. */
export function anyKeyOf(shape: Shape): KnownTree {
  return { '*': knownOf(shape) };
}

/** Valid options for `shape`: each optional field present or not, nested shapes valid too. */
export function validOf(shape: Shape): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, field] of Object.entries(shape.fields)) {
    fields[name] =
      field instanceof Shape
        ? field.alternatives === undefined
          ? validOf(field)
          : fc.oneof(validOf(field), field.alternatives)
        : field;
  }
  const record = fc.record(fields, {
    requiredKeys: [...(shape.settings.required ?? [])],
    noNullPrototype: true,
  });
  const fix = shape.settings.fix;
  return fix === undefined ? record : record.map((options) => fix({ ...options }));
}

/** One fault put into a valid options object. */
interface Fault {
  kind: 'junk' | 'drop' | 'extra';
  /** Which field (or which object, for `extra`) among the candidates. */
  pick: number;
  value: unknown;
  key: string;
}

const fault: fc.Arbitrary<Fault> = fc.record({
  kind: fc.constantFrom<Fault['kind']>('junk', 'junk', 'junk', 'drop', 'extra'),
  pick: fc.nat(),
  value: junk,
  key: fc.string({ minLength: 0, maxLength: 6 }),
});

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Applies faults to a copy of `options`, at any depth of its plain nested objects. */
function applyFaults(options: Record<string, unknown>, faults: readonly Fault[]): unknown {
  const copy = (value: unknown): unknown =>
    isPlain(value)
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]))
      : value;
  const root = copy(options) as Record<string, unknown>;
  for (const f of faults) {
    const objects: Record<string, unknown>[] = [];
    const fields: [Record<string, unknown>, string][] = [];
    const walk = (object: Record<string, unknown>): void => {
      objects.push(object);
      for (const [key, value] of Object.entries(object)) {
        fields.push([object, key]);
        if (isPlain(value)) walk(value);
      }
    };
    walk(root);
    if (f.kind === 'extra' || fields.length === 0) {
      const target = objects[f.pick % objects.length]!;
      if (!(f.key in target)) target[f.key] = copy(f.value);
      continue;
    }
    const [object, key] = fields[f.pick % fields.length]!;
    if (f.kind === 'drop') delete object[key];
    else object[key] = copy(f.value);
  }
  return root;
}

/**
 * Options objects for `shape`: a valid object with zero to three faults (a field replaced by
 * junk at any depth, a field dropped, an unknown key added); now and then the whole value is
 * junk or one of the shape's alternative forms.
 */
export function optionsOf(shape: Shape): fc.Arbitrary<unknown> {
  const faulty = fc
    .tuple(
      validOf(shape),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        { weight: 5, arbitrary: fc.array(fault, { minLength: 1, maxLength: 3 }) },
      ),
    )
    .map(([options, faults]) => applyFaults(options, faults));
  const forms: fc.WeightedArbitrary<unknown>[] = [
    { weight: 12, arbitrary: faulty },
    { weight: 1, arbitrary: junk },
  ];
  if (shape.alternatives !== undefined) forms.push({ weight: 2, arbitrary: shape.alternatives });
  return fc.oneof(...forms);
}

/**
 * A fresh value per generated case (instances with state must not be shared between runs),
 * printed in counterexamples as `label` or as the expression that made it.
 */
export function fresh<T>(
  make: () => T,
  label = String(make).replace(/^\(\) => /, ''),
): fc.Arbitrary<T> {
  return fc.constant(null).map(() => {
    const value = make();
    if ((typeof value === 'object' || typeof value === 'function') && value !== null) {
      Object.defineProperty(value, fc.toStringMethod, { value: () => label });
    }
    return value;
  });
}

/**
 * Durations a duration option accepts: milliseconds or strings, now and then a huge one (weeks,
 * 2^53 ms), which parses as a duration too.
 */
export const duration: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 600_000 }) },
  { weight: 1, arbitrary: fc.double({ min: 0.5, max: 1e6, noNaN: true }) },
  { weight: 2, arbitrary: fc.constantFrom('250ms', '1s', '30s', '5m', '1h', '1.5s') },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 1e12, 2 ** 53, '25d', '30d', '52d') },
);

/** A percentage in (0, 100]. */
export const percent: fc.Arbitrary<unknown> = fc.double({
  min: 0.1,
  max: 100,
  noNaN: true,
});

/** An integer in `[min, max]`. */
export const int = (min: number, max: number): fc.Arbitrary<unknown> => fc.integer({ min, max });

/** A short non-empty name. */
export const name: fc.Arbitrary<unknown> = fc.string({ minLength: 1, maxLength: 24 });

/** A logger that says nothing (a class instance: faults are not put inside it). */
class SilentLogger {
  info(): void {}
  warn(): void {}
  error(): void {}
}
export const silentLogger = new SilentLogger();

/** A clock stuck at one instant. */
class FixedClock {
  constructor(private readonly time: number) {}
  now(): number {
    return this.time;
  }
}
export const fixedClock: fc.Arbitrary<unknown> = fc
  .integer({ min: 0, max: 2 ** 40 })
  .map((t) => new FixedClock(t));
