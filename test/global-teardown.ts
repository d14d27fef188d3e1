export default async function globalTeardown(): Promise<void> {
  await globalThis.__BREAKWATER_REDIS__?.stop();
}
