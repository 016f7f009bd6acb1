import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Document, parse, stringify } from 'yaml';
import { toSafeYaml, YAML_1_1_SAFE } from './yaml.js';

/** Strings YAML 1.1 readers (go-yaml v2 in kubectl, PyYAML) resolve to something other than a string. */
const YAML_1_1_NON_STRINGS = [
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF'],
  ...['true', 'True', 'TRUE', 'false', 'False', 'FALSE', '~', 'null', 'Null', 'NULL', ''],
  ...['0777', '-012', '1e3', '1E+3', '0x1F', '-0x1f', '0b1010', '1_000', '+12', '-0', '1.5', '.5', '0.', '08'],
  ...['1:30', '-1:30', '190:20:30', '12:30:45.5', '.inf', '-.Inf', '+.INF', '.nan', '.NaN', '.NAN', '<<', '='],
  ...['2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10', '2001-1-2'],
];

/**
 * What go-yaml v2 (`resolve.go`: `_` dropped, Go's `strconv.ParseInt(s, 0, 64)` base prefixes, `time.Parse` with a
 * `,` fraction) reads as numbers or times although the `yaml` package's YAML 1.1 schema reads them as strings: a
 * YAML 1.1 parse cannot tell these are safe, so the test looks for the quotes.
 */
const GO_YAML_ONLY = ['0o17', '0O17', '0X1F', '0B11', '+_1', '-_0x1F', '1e1_0', '2001-1-2T1:2:3,5Z'];

const tricky = fc.constantFrom(...YAML_1_1_NON_STRINGS, ...GO_YAML_ONLY);
/** Short strings over the characters numbers, times and booleans are made of. */
const numberish = fc.stringMatching(/^[-+._:0-9eExXoObBtTyYnN ]{1,10}$/);
const anyString = fc.oneof(tricky, numberish, fc.string(), fc.string({ unit: 'grapheme' }));
const labelKey = fc.oneof(
  tricky.filter((s) => s !== '' && s !== '<<'),
  fc.stringMatching(/^[a-z0-9.-]{1,12}$/),
);

describe('toSafeYaml: every string stays a string for YAML 1.1 readers', () => {
  test('labels, annotations and command args of arbitrary strings parse back the same with YAML 1.1 rules', () => {
    fc.assert(
      fc.property(
        fc.dictionary(labelKey, anyString, { maxKeys: 6, noNullPrototype: true }),
        fc.dictionary(labelKey, anyString, { maxKeys: 6, noNullPrototype: true }),
        fc.array(anyString, { maxLength: 6 }),
        (labels, annotations, args) => {
          const obj = {
            apiVersion: 'batch/v1',
            kind: 'CronJob',
            metadata: { name: 'job', labels, annotations },
            spec: { template: { spec: { containers: [{ name: 'job', command: ['/bin/sh', '-c'], args }] } } },
          };
          const text = toSafeYaml(obj);
          assert.deepEqual(parse(text, { version: '1.1' }), obj, text);
          assert.deepEqual(parse(text), obj, text); // and still YAML 1.2
        },
      ),
      { numRuns: 500 },
    );
  });

  test('each YAML 1.1 non-string is quoted, as a value and as a key; the plain YAML 1.2 output was not', () => {
    for (const s of YAML_1_1_NON_STRINGS) {
      assert.deepEqual(parse(toSafeYaml({ v: s }), { version: '1.1' }), { v: s }, s);
      if (s !== '' && s !== '<<') assert.deepEqual(parse(toSafeYaml({ [s]: 1 }), { version: '1.1' }), { [s]: 1 }, s);
    }
    const plain = YAML_1_1_NON_STRINGS.filter((s) => parse(stringify({ v: s }), { version: '1.1' }).v !== s);
    assert.ok(plain.includes('yes') && plain.includes('on') && plain.includes('1:30') && plain.includes('2001-12-14'));
  });

  test("what only go-yaml v2 reads as a number or time is quoted too (kubectl's reader)", () => {
    for (const s of GO_YAML_ONLY) {
      assert.equal(toSafeYaml({ v: s }), `v: "${s}"\n`, s);
      assert.equal(parse(stringify({ v: s }), { version: '1.1' }).v, s, `${s} is a string to the yaml package`);
    }
  });

  test('ordinary strings stay plain, and other types keep their YAML 1.2 form', () => {
    assert.equal(
      toSafeYaml({ image: 'python3.11', cmd: 'echo yes', tag: 'v1.2', count: 3, b: true, z: null }),
      'image: python3.11\ncmd: echo yes\ntag: v1.2\ncount: 3\nb: true\nz: null\n',
    );
  });

  test('a Document built with YAML_1_1_SAFE quotes the same way', () => {
    const doc = new Document({ filelog: 'yes', cmd: 'on' }, YAML_1_1_SAFE);
    assert.equal(doc.toString(), 'filelog: "yes"\ncmd: "on"\n');
  });
});
