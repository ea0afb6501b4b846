// Go's regexp.Expand: the template language of spec.filterTags.extract.
// `$$` is a dollar; `$name` takes the longest run of letters, digits and underscores (Unicode
// letters and decimal digits, as Go's unicode.IsLetter and IsDigit); `${name}` is delimited.
// A name of decimal digits without a leading zero (and below 1e8 before its last digit) is a group
// number; any other name is a group name. A group that does not exist, or did not take part in the
// match, expands to nothing. A `$` not followed by a valid reference is kept as it is.

const NAME_CHAR = /[\p{L}\p{Nd}_]/uy;

/** The length of the name at `i`: letters, digits and underscores. */
function nameLength(template: string, i: number): number {
  let j = i;
  for (;;) {
    NAME_CHAR.lastIndex = j;
    if (!NAME_CHAR.test(template)) return j - i;
    j = NAME_CHAR.lastIndex;
  }
}

/** Go's reading of a reference name as a group number; -1 when it is a name. */
function groupNumber(name: string): number {
  let num = 0;
  for (const c of name) {
    if (c < '0' || c > '9' || num >= 1e8) return -1;
    num = num * 10 + (c.charCodeAt(0) - 48);
  }
  if (name[0] === '0' && name.length > 1) return -1;
  return num;
}

/**
 * Expands `template` with a match: `groups[i]` is the text of capture group i (0 the whole match,
 * undefined when it did not take part), `names[i]` its name ('' if unnamed).
 */
export function expand(template: string, groups: readonly (string | undefined)[], names: readonly string[]): string {
  let out = '';
  let i = 0;
  for (;;) {
    const dollar = template.indexOf('$', i);
    if (dollar < 0) break;
    out += template.slice(i, dollar);
    i = dollar + 1;
    if (template[i] === '$') {
      out += '$';
      i++;
      continue;
    }
    const brace = template[i] === '{';
    const start = brace ? i + 1 : i;
    const len = nameLength(template, start);
    if (len === 0 || (brace && template[start + len] !== '}')) {
      // Not a reference: the dollar stays, and what follows is read as text.
      out += '$';
      continue;
    }
    const name = template.slice(start, start + len);
    i = start + len + (brace ? 1 : 0);
    const num = groupNumber(name);
    if (num >= 0) {
      out += groups[num] ?? '';
    } else {
      const k = names.indexOf(name);
      if (k > 0) out += groups[k] ?? '';
    }
  }
  return out + template.slice(i);
}
