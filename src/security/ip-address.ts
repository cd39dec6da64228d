/**
 * Which IP addresses an outbound request of the server may reach: only
 * public, globally routable unicast ones. Everything else is refused with a
 * reason: loopback, private (RFC 1918), carrier-grade NAT, link-local
 * (including the cloud metadata service at 169.254.169.254), unique-local,
 * multicast, unspecified, documentation, benchmarking and reserved ranges,
 * IPv4 addresses hidden in IPv6 (IPv4-mapped, IPv4-compatible, NAT64, 6to4)
 * judged as the IPv4 address they carry, and Teredo.
 *
 * Pure: no I/O. Used by the SSRF guard (`outbound-fetch.ts`) on the address
 * a connection is actually made to.
 */
import { isIP } from 'node:net';

type Range = readonly [base: readonly number[], prefixBits: number, reason: string];

/** IPv4 ranges that are not public (RFC 6890 and the IANA special-purpose registry). */
const IPV4_RANGES: readonly Range[] = [
  [[0, 0, 0, 0], 8, 'unspecified ("this network")'],
  [[10, 0, 0, 0], 8, 'private'],
  [[100, 64, 0, 0], 10, 'shared address space (carrier-grade NAT)'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local (cloud metadata service)'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'IETF protocol assignments'],
  [[192, 0, 2, 0], 24, 'documentation'],
  [[192, 88, 99, 0], 24, '6to4 relay anycast'],
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'benchmarking'],
  [[198, 51, 100, 0], 24, 'documentation'],
  [[203, 0, 113, 0], 24, 'documentation'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved or broadcast'],
];

/** IPv6 ranges that are not public, as 16-bit words. Those that carry an IPv4 address are handled before. */
const IPV6_RANGES: readonly Range[] = [
  [[0, 0, 0, 0, 0, 0, 0, 0], 128, 'unspecified'],
  [[0, 0, 0, 0, 0, 0, 0, 1], 128, 'loopback'],
  [[0, 0, 0, 0, 0, 0, 0, 0], 96, 'IPv4-compatible (deprecated)'],
  [[0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, 'local-use NAT64'],
  [[0x100, 0, 0, 0, 0, 0, 0, 0], 64, 'discard-only'],
  [[0x2001, 0, 0, 0, 0, 0, 0, 0], 32, 'Teredo'],
  [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, 'documentation'],
  [[0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, 'documentation'],
  [[0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, 'unique-local'],
  [[0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, 'link-local'],
  [[0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, 'site-local (deprecated)'],
  [[0xff00, 0, 0, 0, 0, 0, 0, 0], 8, 'multicast'],
];

function inRange(parts: readonly number[], bitsPerPart: number, [base, prefixBits]: Range): boolean {
  let left = prefixBits;
  for (let i = 0; i < parts.length && left > 0; i++) {
    const bits = Math.min(bitsPerPart, left);
    const shift = bitsPerPart - bits;
    if (parts[i]! >> shift !== base[i]! >> shift) return false;
    left -= bits;
  }
  return true;
}

function ipv4Parts(address: string): number[] {
  return address.split('.').map(Number);
}

/** The eight 16-bit words of a valid IPv6 address (zone index dropped; a trailing dotted quad allowed). */
function ipv6Words(address: string): number[] {
  let text = address.split('%', 1)[0]!;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const [a, b, c, d] = ipv4Parts(last);
    tail.push((a! << 8) | b!, (c! << 8) | d!);
    // "::ffff:1.2.3.4" → "::ffff"; "::1.2.3.4" → "::".
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const words = (part: string) => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const gap = text.indexOf('::');
  const front = words(gap === -1 ? text : text.slice(0, gap));
  const back = gap === -1 ? [] : words(text.slice(gap + 2));
  const zeros = new Array<number>(8 - front.length - back.length - tail.length).fill(0);
  return [...front, ...zeros, ...back, ...tail];
}

function ipv4Reason(parts: readonly number[]): string | null {
  return IPV4_RANGES.find((range) => inRange(parts, 8, range))?.[2] ?? null;
}

/** The IPv4 address in two 16-bit words. */
const embedded = (high: number, low: number): number[] => [high >> 8, high & 0xff, low >> 8, low & 0xff];

/**
 * Why `address` (an IPv4 or IPv6 literal, IPv6 without brackets) must not
 * be connected to, or null when it is a public unicast address. Anything
 * that is not an IP address at all is refused too.
 */
export function nonPublicReason(address: string): string | null {
  const version = isIP(address);
  if (version === 4) return ipv4Reason(ipv4Parts(address));
  if (version !== 6) return 'not an IP address';
  const w = ipv6Words(address);
  const carried = (reason: string, v4: number[]) => {
    const inner = ipv4Reason(v4);
    return inner === null ? null : `${reason} ${v4.join('.')}: ${inner}`;
  };
  // ::ffff:0:0/96 IPv4-mapped, 64:ff9b::/96 NAT64: the IPv4 address decides.
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return carried('IPv4-mapped', embedded(w[6]!, w[7]!));
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) return carried('NAT64', embedded(w[6]!, w[7]!));
  // 2002::/16 6to4: the IPv4 address is in words 1 and 2.
  if (w[0] === 0x2002) return carried('6to4', embedded(w[1]!, w[2]!));
  const special = IPV6_RANGES.find((range) => inRange(w, 16, range));
  if (special) return special[2];
  // Only 2000::/3 is global unicast; the rest of the space is reserved.
  return w[0]! >> 13 === 1 ? null : 'reserved';
}
