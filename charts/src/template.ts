// How the chart's cdk8s objects carry Helm template code. cdk8s emits plain data, so a value that
// Helm must fill in is written as a token string, and `toTemplate` turns the emitted YAML into a
// template file. Three tokens, one guard:
//
//   value(text)     a scalar: `text` (template code such as `{{ .Values.x }}`) replaces the token.
//                   When the token is the whole scalar its YAML quotes go too, so that `text`
//                   decides the type (`{{ .Values.replicas }}` is a number, `{{ ... | quote }}` a
//                   string); inside a longer string it is spliced in place.
//   block(expr)     the whole value of a mapping key: `key: {{- toYaml (expr) | nindent N }}`,
//                   N being the key's column + 2, for maps and lists straight from values.
//   each(expr)      a whole item of a list of strings: one quoted item per element of `expr`.
//   guard(cond, y)  wraps a file in `{{- if cond }}` ... `{{- end }}`.
//
// Literal `{{` in the data (a CRD description, say) is escaped so Helm prints it as written.
// Tokens are base64url between %% marks: no character in them needs quoting or escaping in YAML.

type Kind = 'v' | 'b' | 'e';

function token(kind: Kind, text: string): string {
  return `%%${kind}:${Buffer.from(text, 'utf8').toString('base64url')}%%`;
}

function decode(b64: string): string {
  return Buffer.from(b64, 'base64url').toString('utf8');
}

/** Template code standing in for a scalar of any type. */
export function value<T = string>(text: string): T {
  return token('v', text) as T;
}

/** The YAML of a template expression, as the whole value of a mapping key. */
export function block<T>(expr: string): T {
  return token('b', expr) as T;
}

/** A list item that expands to the strings of a template expression (a list). */
export function each(expr: string): string {
  return token('e', expr);
}

/** A template file rendered only when `cond` (template code, e.g. `.Values.x.enabled`) holds. */
export function guard(cond: string, yaml: string): string {
  return `{{- if ${cond} }}\n${yaml.replace(/\n?$/, '\n')}{{- end }}\n`;
}

const B64 = '[A-Za-z0-9_-]*';
const BLOCK = new RegExp(`^( *)(- )?([^\\n]*?):[ ]+(['"]?)%%b:(${B64})%%\\4$`, 'gm');
const EACH = new RegExp(`^( *)- (['"]?)%%e:(${B64})%%\\2$`, 'gm');
const WHOLE_VALUE = new RegExp(`(['"]?)%%v:(${B64})%%\\1(?=$|\\n)`, 'g');
const VALUE = new RegExp(`%%v:(${B64})%%`, 'g');

/** YAML with tokens (as emitted by the `yaml` package) → Helm template text. */
export function toTemplate(yaml: string): string {
  return yaml
    .replaceAll('{{', '{{ "{{" }}')
    .replace(BLOCK, (_m, indent: string, dash: string | undefined, key: string, _q, b64: string) => {
      const column = indent.length + (dash ? 2 : 0);
      return `${indent}${dash ?? ''}${key}: {{- toYaml (${decode(b64)}) | nindent ${column + 2} }}`;
    })
    .replace(EACH, (_m, indent: string, _q, b64: string) =>
      [`${indent}{{- range ${decode(b64)} }}`, `${indent}- {{ . | quote }}`, `${indent}{{- end }}`].join('\n'),
    )
    .replace(WHOLE_VALUE, (m, _q, b64: string, offset: number, all: string) => {
      // Whole only when the token starts the scalar: right after `key: ` or `- `.
      const before = all.slice(all.lastIndexOf('\n', offset - 1) + 1, offset);
      return /(^|: |- )$/.test(before) ? decode(b64) : m;
    })
    .replace(VALUE, (_m, b64: string) => decode(b64));
}
