/**
 * Kubernetes quantities with the arithmetic jobs-api uses: toolforge_weld's `parse_quantity` (a Python `Decimal`),
 * `format_quantity` (which goes through `float`, so "1Gi" becomes "1.0Gi") and `parse_and_format_mem`.
 * A decimal is kept exact as coefficient × 10^exponent, like Python's Decimal, so trailing zeros survive
 * (`str(Decimal("0.500"))` is "0.500", and jobs-api writes such strings into objects).
 */

export interface Dec {
  readonly coef: bigint;
  readonly exp: number;
}

const DECIMAL_RE = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** Python's `Decimal(str)` for finite numbers; null where Python would raise (or give NaN/Infinity). */
export function parseDecimal(text: string): Dec | null {
  const m = DECIMAL_RE.exec(text);
  if (!m) return null;
  const [, sign = '', intPart = '', fracPart = '', expPart] = m;
  if (intPart === '' && fracPart === '') return null;
  const digits = `${intPart}${fracPart}` || '0';
  const coef = BigInt(digits) * (sign === '-' ? -1n : 1n);
  return { coef, exp: (expPart ? Number(expPart) : 0) - fracPart.length };
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

export function mulDec(a: Dec, b: Dec): Dec {
  return { coef: a.coef * b.coef, exp: a.exp + b.exp };
}

/** Exact division by 2 at the exponent Python's Decimal picks (the dividend's, or one more digit when odd). */
export function halfDec(a: Dec): Dec {
  return a.coef % 2n === 0n ? { coef: a.coef / 2n, exp: a.exp } : { coef: a.coef * 5n, exp: a.exp - 1 };
}

export function compareDec(a: Dec, b: Dec): -1 | 0 | 1 {
  const exp = Math.min(a.exp, b.exp);
  const x = a.coef * pow10(a.exp - exp);
  const y = b.coef * pow10(b.exp - exp);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `str(Decimal)`: plain notation unless the exponent is positive or the number is very small. */
export function decToString(d: Dec): string {
  const negative = d.coef < 0n;
  const digits = (negative ? -d.coef : d.coef).toString();
  const adjusted = d.exp + digits.length - 1;
  let body: string;
  if (d.exp <= 0 && adjusted >= -6) {
    if (d.exp === 0) body = digits;
    else {
      const point = digits.length + d.exp;
      body = point > 0 ? `${digits.slice(0, point)}.${digits.slice(point)}` : `0.${'0'.repeat(-point)}${digits}`;
    }
  } else {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${mantissa}E${adjusted >= 0 ? '+' : ''}${adjusted}`;
  }
  return negative ? `-${body}` : body;
}

/** `repr(float)`: the shortest round-trip digits, scientific below 1e-4 and from 1e16 up. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant = '', expText = '0'] = Math.abs(x).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp10 = Number(expText);
  let body: string;
  if (exp10 < -4 || exp10 >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp10).toString().padStart(2, '0');
    body = `${m}e${exp10 < 0 ? '-' : '+'}${e}`;
  } else if (exp10 >= digits.length - 1) {
    body = `${digits}${'0'.repeat(exp10 - digits.length + 1)}.0`;
  } else if (exp10 >= 0) {
    body = `${digits.slice(0, exp10 + 1)}.${digits.slice(exp10 + 1)}`;
  } else {
    body = `0.${'0'.repeat(-exp10 - 1)}${digits}`;
  }
  return x < 0 ? `-${body}` : body;
}

/** `Decimal.quantize(Decimal(10) ** exp)` with the default ROUND_HALF_EVEN. */
export function quantizeDec(d: Dec, exp: number): Dec {
  if (d.exp >= exp) return { coef: d.coef * pow10(d.exp - exp), exp };
  const divisor = pow10(exp - d.exp);
  const negative = d.coef < 0n;
  const abs = negative ? -d.coef : d.coef;
  let q = abs / divisor;
  const r = abs % divisor;
  if (r * 2n > divisor || (r * 2n === divisor && q % 2n === 1n)) q += 1n;
  return { coef: negative ? -q : q, exp };
}

const SI_EXPONENTS: Readonly<Record<string, number>> = {
  n: -3,
  u: -2,
  m: -1,
  K: 1,
  k: 1,
  M: 2,
  G: 3,
  T: 4,
  P: 5,
  E: 6,
};

/** 1/base^k as an exact decimal: base^k divides 10^m for the m used here (base 1000 or 1024). */
function basePower(base: 1000 | 1024, exponent: number): Dec {
  if (exponent >= 0) return { coef: BigInt(base) ** BigInt(exponent), exp: 0 };
  const k = -exponent;
  return base === 1000 ? { coef: 1n, exp: -3 * k } : { coef: 5n ** BigInt(10 * k), exp: -10 * k };
}

/**
 * toolforge_weld / kubernetes-client `parse_quantity`: suffix "Ki".."Ei" is base 1024, "n".."E" base 1000,
 * "ki" is rejected; null where Python raises.
 */
export const parseQuantity = memoize(parseQuantityUncached);

function parseQuantityUncached(quantity: string): Dec | null {
  let number = quantity;
  let suffix: string | null = null;
  const last = quantity.at(-1);
  const beforeLast = quantity.at(-2);
  if (quantity.length >= 2 && last === 'i') {
    if (beforeLast !== undefined && beforeLast in SI_EXPONENTS) {
      number = quantity.slice(0, -2);
      suffix = quantity.slice(-2);
    }
  } else if (last !== undefined && last in SI_EXPONENTS) {
    number = quantity.slice(0, -1);
    suffix = last;
  }
  const value = parseDecimal(number);
  if (value === null) return null;
  if (suffix === null) return value;
  if (suffix === 'ki') return null;
  const exponent = SI_EXPONENTS[suffix[0] ?? ''];
  if (exponent === undefined) return null;
  return mulDec(value, basePower(suffix.endsWith('i') ? 1024 : 1000, exponent));
}

function decToNumber(d: Dec): number {
  return Number(decToString(d));
}

/**
 * Remembers a pure string function's results. Quantities repeat across thousands of jobs ("0.5Gi", "100m"), and
 * the exact decimal arithmetic is the sync's largest per-job cost without it. Bounded: cleared when full.
 */
function memoize<T>(fn: (s: string) => T | null): (s: string) => T | null {
  const cache = new Map<string, T | null>();
  return (s) => {
    let out = cache.get(s);
    if (out === undefined && !cache.has(s)) {
      if (cache.size >= 1024) cache.clear();
      out = fn(s);
      cache.set(s, out);
    }
    return out ?? null;
  };
}

/** jobs-api `format_quantity(parse_quantity(x))`, e.g. "100m" → "0.1", "1" → "1.0"; null if unparseable. */
export const formatCpu = memoize(formatCpuUncached);

function formatCpuUncached(cpu: string): string | null {
  const value = parseQuantity(cpu);
  return value === null ? null : pyFloatRepr(decToNumber(value));
}

const GIBIBYTE_EXP = 30;

/** jobs-api `parse_and_format_mem`: bytes in Gi, rounded half-even to 3 decimals, through float: "512Mi" → "0.5Gi". */
export const formatMemory = memoize(formatMemoryUncached);

function formatMemoryUncached(memory: string): string | null {
  const bytes = parseQuantity(memory);
  if (bytes === null) return null;
  // bytes / 2^30 == bytes * 5^30 / 10^30, exact
  const gib: Dec = {
    coef: bytes.coef * 5n ** BigInt(GIBIBYTE_EXP),
    exp: bytes.exp - GIBIBYTE_EXP,
  };
  return `${pyFloatRepr(decToNumber(quantizeDec(gib, -3)))}Gi`;
}

export function quantitiesEqual(a: string, b: string): boolean {
  const x = parseQuantity(a);
  const y = parseQuantity(b);
  return x !== null && y !== null && compareDec(x, y) === 0;
}
