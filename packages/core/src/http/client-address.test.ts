import { describe, expect, it } from '@jest/globals';
import { addressKey } from './client-address';

describe('addressKey', () => {
  it.each([
    ['127.0.0.1', 56, '127.0.0.1'],
    ['::ffff:127.0.0.1', 56, '127.0.0.1'],
    ['::FFFF:10.1.2.3', false, '10.1.2.3'],
    ['::ffff:7f00:1', 56, '127.0.0.1'],
    ['2001:db8:1234:5678:9abc::1', 56, '2001:db8:1234:5600::/56'],
    ['2001:db8:1234:56ff:ffff:ffff:ffff:ffff', 56, '2001:db8:1234:5600::/56'],
    ['2001:db8:1234:5678:9abc::1', 64, '2001:db8:1234:5678::/64'],
    ['2001:DB8::1', false, '2001:db8::1'],
    ['2001:db8:0:0:0:0:0:1', 128, '2001:db8::1'],
    ['fe80::1%eth0', 64, 'fe80::/64'],
    ['::1', 56, '::/56'],
    ['::1', false, '::1'],
    ['1:2:3:4:5:6:7:8', 48, '1:2:3::/48'],
    ['::1.2.3.4', false, '::102:304'],
    ['64:ff9b::192.0.2.33', 96, '64:ff9b::/96'],
    ['not-an-address', 56, 'not-an-address'],
    ['1::2::3', 56, '1::2::3'],
    ['1:2:3:4:5:6:7:8:9', 56, '1:2:3:4:5:6:7:8:9'],
    ['::ffff:300.1.2.3', 56, '::ffff:300.1.2.3'],
  ] as const)('%s /%p -> %s', (address, subnet, key) => {
    expect(addressKey(address, subnet)).toBe(key);
  });

  it('gives every address of one /56 the same key, and another /56 another', () => {
    const a = addressKey('2001:db8:aa:bb01::1', 56);
    expect(addressKey('2001:db8:aa:bbff:1234::9', 56)).toBe(a);
    expect(addressKey('2001:db8:aa:bc00::1', 56)).not.toBe(a);
  });
});
