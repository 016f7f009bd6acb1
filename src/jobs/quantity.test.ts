import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decToString,
  formatCpu,
  formatMemory,
  halfDec,
  parseQuantity,
  pyFloatRepr,
  quantitiesEqual,
} from './quantity.js';

// Expected values were produced by jobs-api's own functions under CPython 3.11.
describe('formatMemory (parse_and_format_mem)', () => {
  const cases: [string, string][] = [
    ['512Mi', '0.5Gi'],
    ['1Gi', '1.0Gi'],
    ['100Mi', '0.098Gi'],
    ['1G', '0.931Gi'],
    ['2.5Gi', '2.5Gi'],
    ['768Mi', '0.75Gi'],
    ['1000000000', '0.931Gi'],
    ['1536Mi', '1.5Gi'],
    ['3Gi', '3.0Gi'],
    ['7Mi', '0.007Gi'],
    ['1Ki', '0.0Gi'],
  ];
  for (const [input, expected] of cases) {
    test(`${input} → ${expected}`, () => assert.equal(formatMemory(input), expected));
  }
  test('rejects what parse_quantity rejects', () => {
    assert.equal(formatMemory('lots'), null);
    assert.equal(formatMemory('1ki'), null);
    assert.equal(formatMemory(''), null);
  });
});

describe('formatCpu (format_quantity(parse_quantity))', () => {
  const cases: [string, string][] = [
    ['100m', '0.1'],
    ['1', '1.0'],
    ['1000m', '1.0'],
    ['500m', '0.5'],
    ['0.25', '0.25'],
    ['2', '2.0'],
    ['1m', '0.001'],
    ['1.5', '1.5'],
  ];
  for (const [input, expected] of cases) {
    test(`${input} → ${expected}`, () => assert.equal(formatCpu(input), expected));
  }
});

describe('Decimal strings as jobs-api writes them into resources', () => {
  test('memory request is half the limit above 512Mi, at the Decimal exponent', () => {
    const half = (m: string): string => decToString(halfDec(parseQuantity(m) ?? { coef: 0n, exp: 0 }));
    assert.equal(half('1.0Gi'), '536870912.0');
    assert.equal(half('2.0Gi'), '1073741824.0');
    assert.equal(half('0.75Gi'), '402653184.00');
    assert.equal(half('0.501Gi'), '268972326.912');
  });
  test('str(Decimal) of parsed quantities keeps trailing zeros', () => {
    assert.equal(decToString(parseQuantity('500m') ?? { coef: 0n, exp: 0 }), '0.500');
    assert.equal(decToString(parseQuantity('0.1') ?? { coef: 0n, exp: 0 }), '0.1');
  });
  test('python float repr', () => {
    assert.equal(pyFloatRepr(1), '1.0');
    assert.equal(pyFloatRepr(0.00001), '1e-05');
    assert.equal(pyFloatRepr(1e16), '1e+16');
    assert.equal(pyFloatRepr(123.5), '123.5');
  });
  test('quantities compare by value', () => {
    assert.ok(quantitiesEqual('1', '1000m'));
    assert.ok(quantitiesEqual('512Mi', '0.5Gi'));
    assert.ok(!quantitiesEqual('500m', '1'));
  });
});
