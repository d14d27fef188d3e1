/**
 * The rate-limit key of a client address: an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is its
 * IPv4 address, and an IPv6 address is grouped by its `/subnet` prefix (`2001:db8:1:ff00::/56`),
 * since one client usually holds a whole /64 or more. IPv4 addresses and anything that does not
 * parse as IPv6 are returned unchanged. `subnet` false (or 128) keeps the full address
 * (normalised to its canonical text).
 */
export function addressKey(address: string, subnet: number | false): string {
  if (!address.includes(':')) return address;
  const groups = parseIpv6(address);
  if (groups === undefined) return address;
  if (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  const bits = subnet === false ? 128 : subnet;
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, bits - i * 16));
    groups[i] =
      keep === 16 ? groups[i]! : keep === 0 ? 0 : groups[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  const text = formatIpv6(groups);
  return bits === 128 ? text : `${text}/${bits}`;
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined. */
function parseIpv6(input: string): number[] | undefined {
  let text = input;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const parts = last.split('.');
    if (parts.length !== 4) return undefined;
    const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : 256));
    if (bytes.some((b) => b > 255)) return undefined;
    tail.push((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const zeros = new Array<number>(8 - given).fill(0);
  return [...head, ...zeros, ...rest, ...tail];
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as `::`. */
function formatIpv6(groups: readonly number[]): string {
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestAt = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLength).join(':')}`;
}
