// Go's strconv.ParseFloat(s, 64): the syntax it accepts and the value it gives, or undefined where
// it returns an error (bad syntax, or a finite number too large for float64: ErrRange).
// Accepted: an optional sign, then decimal digits with an optional point and `e` exponent, or `0x`
// hexadecimal digits with an optional point and a required `p` exponent; `_` between digits (or
// after the base prefix); "inf", "infinity" (with optional sign) and "nan", in any case.

/** Go's underscoreOK: each underscore sits between digits, or between the base prefix and a digit. */
function underscoresOk(s: string): boolean {
  let saw = '^';
  let i = 0;
  let t = s;
  if (t[0] === '+' || t[0] === '-') t = t.slice(1);
  let hex = false;
  if (t.length >= 2 && t[0] === '0' && 'bBoOxX'.includes(t[1]!)) {
    i = 2;
    saw = '0';
    hex = t[1] === 'x' || t[1] === 'X';
  }
  for (; i < t.length; i++) {
    const c = t[i]!;
    if ((c >= '0' && c <= '9') || (hex && /[a-fA-F]/.test(c))) {
      saw = '0';
      continue;
    }
    if (c === '_') {
      if (saw !== '0') return false;
      saw = '_';
      continue;
    }
    if (saw === '_') return false;
    saw = '!';
  }
  return saw !== '_';
}

function special(s: string): number | undefined {
  const lower = s.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  const sign = lower[0] === '-' ? -1 : 1;
  const body = lower[0] === '-' || lower[0] === '+' ? lower.slice(1) : lower;
  if (body === 'inf' || body === 'infinity') return sign * Number.POSITIVE_INFINITY;
  return undefined;
}

const DECIMAL = /^[+-]?(?=[0-9_]*[0-9]|[0-9_]*\.[0-9_]*[0-9])[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9][0-9_]*)?$/;
const HEX = /^([+-]?)0[xX]([0-9a-fA-F_]*)(?:\.([0-9a-fA-F_]*))?[pP]([+-]?[0-9][0-9_]*)$/;

/** mantissa × 2^exp as the nearest float64 (ties to even); Infinity when it overflows. */
function scaleBinary(mantissa: bigint, exp: number): number {
  if (mantissa === 0n) return 0;
  const top = mantissa.toString(2).length - 1 + exp;
  // The lowest bit kept: 53 significant bits, or fewer below the normal range (2^-1074 at least).
  const low = Math.max(top - 52, -1074);
  let m = mantissa;
  const shift = low - exp;
  if (shift > 0) {
    const s = BigInt(shift);
    const kept = m >> s;
    const rem = m - (kept << s);
    const half = 1n << (s - 1n);
    m = rem > half || (rem === half && (kept & 1n) === 1n) ? kept + 1n : kept;
  } else {
    m <<= BigInt(-shift);
  }
  // m has at most 54 bits here, and each step is exact but for overflow to Infinity.
  let v = Number(m);
  let e = low;
  while (e > 0) {
    const k = Math.min(e, 1000);
    v *= 2 ** k;
    e -= k;
  }
  while (e < 0) {
    const k = Math.max(e, -1000);
    v *= 2 ** k;
    e -= k;
  }
  return v;
}

/** strconv.ParseFloat(s, 64); undefined where Go returns an error. */
export function parseGoFloat(s: string): number | undefined {
  const sp = special(s);
  if (sp !== undefined) return sp;
  if (s.includes('_') && !underscoresOk(s)) return undefined;
  const hex = HEX.exec(s);
  if (hex) {
    const [, sign, int = '', frac = '', expText = ''] = hex;
    const digits = (int + frac).replaceAll('_', '');
    if (digits === '') return undefined;
    const exp = Number.parseInt(expText.replaceAll('_', ''), 10);
    // Go caps the exponent it reads; far beyond the float64 range either way.
    const e = Math.max(Math.min(exp, 100000), -100000) - 4 * frac.replaceAll('_', '').length;
    const v = scaleBinary(BigInt(`0x${digits}`), e);
    if (!Number.isFinite(v)) return undefined;
    return sign === '-' ? -v : v;
  }
  if (!DECIMAL.test(s)) return undefined;
  const v = Number(s.replaceAll('_', ''));
  return Number.isFinite(v) ? v : undefined;
}
