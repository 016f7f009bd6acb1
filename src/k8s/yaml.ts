import { stringify, type CreateNodeOptions, type DocumentOptions, type SchemaOptions, type ScalarTag } from 'yaml';
import type { ToStringOptions } from 'yaml';

/**
 * YAML that YAML 1.1 readers take back as the same values. kubectl and kube-apiserver read YAML through
 * sigs.k8s.io/yaml, which resolves plain scalars with go-yaml v2's YAML 1.1 rules (`yes`, `on`, `y` are booleans,
 * `0777` an octal int, `2001-12-14` a timestamp); `toolforge jobs load` reads its file with PyYAML, also YAML 1.1.
 * The `yaml` package's YAML 1.2 output leaves such strings plain, so a label `yes` reaches kubectl as `true` and
 * the object is refused.
 *
 * `compat: 'yaml-1.1'` makes the `yaml` package quote every string its YAML 1.1 schema would read as another type
 * (booleans, null, ints in all bases, floats, `.inf`/`.nan`, sexagesimal numbers, timestamps) while the output stays
 * YAML 1.2 as well. What go-yaml v2 and PyYAML resolve beyond that schema is added as one more tag below.
 */

/**
 * Plain scalars go-yaml v2 (`resolve.go`) reads as numbers or times that the `yaml` package's YAML 1.1 schema does
 * not: it drops every `_` before parsing (`+_1`, `1e1_0`), parses with Go's base prefixes (`0o17`, `0O17`, `0X1F`,
 * `0B1`), and takes `YYYY-M-D` dates followed by any time Go accepts (a `,` before the fraction). PyYAML reads a
 * plain `=` as the `value` tag, which its safe loader refuses, and both treat `<<` as a merge key. Matching more
 * than these readers resolve costs only a pair of quotes.
 */
const YAML_1_1_READERS: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  test: new RegExp(
    [
      '^(?:=|<<',
      // sign, digits, point, exponent, with '_' anywhere after the first character
      '|[-+0-9][-+0-9_]*(?:\\.[0-9_]*)?(?:[eE][-+_]*[0-9_]*)?',
      // Go's base prefixes, after an optional sign and '_'s
      '|[-+]?_*0_*[xXoObB][0-9a-fA-F_]*',
      // a date, then anything
      '|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt \\t].*)?',
      ')$',
    ].join(''),
  ),
  resolve: (str) => str,
};

/** Options for `stringify` and `new Document(…)` that keep every string a string for YAML 1.1 readers. */
export const YAML_1_1_SAFE: DocumentOptions & SchemaOptions & CreateNodeOptions = {
  compat: 'yaml-1.1',
  customTags: [YAML_1_1_READERS],
};

/** `value` as YAML that kubectl, kube-apiserver and PyYAML read back unchanged (no `---` marker). */
export function toSafeYaml(value: unknown, options: ToStringOptions = {}): string {
  return stringify(value, { ...YAML_1_1_SAFE, ...options });
}
