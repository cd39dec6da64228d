/** The SSRF guard's address rule: only public unicast addresses, IPv4 hidden in IPv6 judged as IPv4. */
import t from 'tap';
import { nonPublicReason } from '../../src/security/ip-address.js';

t.test('refused: loopback, private, link-local, unique-local, multicast, unspecified and the rest, in both families', async (t) => {
  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1', /loopback/],
    ['127.255.0.9', /loopback/],
    ['10.0.0.1', /private/],
    ['10.255.255.255', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.1.10', /private/],
    ['169.254.169.254', /link-local/],
    ['169.254.0.1', /link-local/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['0.0.0.0', /unspecified/],
    ['224.0.0.251', /multicast/],
    ['239.255.255.250', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['240.0.0.1', /reserved/],
    ['192.0.2.1', /documentation/],
    ['198.18.0.1', /benchmarking/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['fd12:3456::1', /unique-local/],
    ['fc00::1', /unique-local/],
    ['ff02::1', /multicast/],
    ['::ffff:127.0.0.1', /IPv4-mapped 127\.0\.0\.1: loopback/],
    ['::ffff:7f00:1', /IPv4-mapped 127\.0\.0\.1: loopback/],
    ['::ffff:10.1.2.3', /IPv4-mapped 10\.1\.2\.3: private/],
    ['::ffff:a9fe:a9fe', /IPv4-mapped 169\.254\.169\.254: link-local/],
    ['0:0:0:0:0:ffff:192.168.0.1', /IPv4-mapped 192\.168\.0\.1: private/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['64:ff9b::10.0.0.1', /NAT64 10\.0\.0\.1: private/],
    ['2002:7f00:1::', /6to4 127\.0\.0\.1: loopback/],
    ['2001:db8::1', /documentation/],
    ['2001::1', /Teredo/],
    ['4000::1', /reserved/],
    ['metadata.google.internal', /not an IP address/],
    ['', /not an IP address/],
  ];
  for (const [address, reason] of refused) t.match(nonPublicReason(address), reason, address);
});

t.test('allowed: public unicast, in both families', async (t) => {
  for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '169.255.0.1', '2606:4700:4700::1111', '2a00:1450:4001:81b::200e', '::ffff:8.8.8.8', '64:ff9b::808:808']) {
    t.equal(nonPublicReason(address), null, address);
  }
});
