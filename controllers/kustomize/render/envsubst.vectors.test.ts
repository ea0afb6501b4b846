// Runs every upstream envsubst vector (envsubst.vectors.json, copied from Flux's envsubst, the fork of
// drone/envsubst that Flux substitutes with) through this port.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { apply, expand, type Node, parseTemplate, SubstitutionSyntaxError } from './envsubst.ts';

type UpstreamNode =
  | { text: string }
  | { param: string; name: string; args?: UpstreamNode[] }
  | { list: UpstreamNode[] };

const data = JSON.parse(readFileSync(new URL('./envsubst.vectors.json', import.meta.url), 'utf8')) as {
  source: { repository: string };
  expand: { params: Record<string, string>; input: string; output: string }[];
  strict: { params: Record<string, string>; input: string; output: string; error?: string }[];
  parse: { text: string; node: UpstreamNode }[];
  funcs: { fn: string; args: string[]; want: string }[];
};

/** Upstream's tree in this port's shape: lists flattened, `${#x}` named '#len', adjacent text joined. */
function flatten(node: UpstreamNode): Node[] {
  if ('list' in node) return node.list.flatMap(flatten);
  if ('text' in node) return [{ text: node.text }];
  const args = node.args ?? [];
  const op = node.name === '#' && args.length === 0 ? '#len' : node.name;
  return [{ name: node.param, op, args: args.flatMap(flatten) }];
}

function joined(nodes: Node[]): Node[] {
  const out: Node[] = [];
  for (const n of nodes) {
    const last = out.at(-1);
    if ('text' in n && last && 'text' in last) out[out.length - 1] = { text: last.text + n.text };
    else out.push('text' in n ? n : { ...n, args: joined(n.args) });
  }
  return out;
}

const FUNCS: Record<string, (args: string[]) => string> = {
  toLen: ([v = '']) => apply('#len', v, []),
  toLower: ([v = '']) => apply(',,', v, []),
  toLowerFirst: ([v = '']) => apply(',', v, []),
  toUpper: ([v = '']) => apply('^^', v, []),
  toUpperFirst: ([v = '']) => apply('^', v, []),
  toDefault: ([v = '', ...rest]) => apply(':=', v, rest),
  toSubstr: ([v = '', ...rest]) => apply(':', v, rest),
};

describe(`envsubst vectors (${data.source.repository})`, () => {
  describe('TestExpand', () => {
    for (const v of data.expand) {
      it(`${v.input} → ${v.output}`, () => {
        // Upstream's lookup reports every variable as set, to its value or "".
        expect(expand(v.input, (n) => v.params[n] ?? '')).to.equal(v.output);
      });
    }
  });

  describe('TestExpandStrict', () => {
    for (const v of data.strict) {
      it(`${v.input} → ${v.error ? 'error' : v.output}`, () => {
        const run = () => expand(v.input, (n) => v.params[n], { strict: true });
        if (v.error) expect(run).to.throw(SubstitutionSyntaxError, v.error);
        else expect(run()).to.equal(v.output);
      });
    }
  });

  describe('TestParse', () => {
    for (const v of data.parse) {
      it(v.text, () => {
        expect(joined(parseTemplate(v.text))).to.deep.equal(joined(flatten(v.node)));
      });
    }
  });

  describe('funcs_test', () => {
    for (const v of data.funcs) {
      it(`${v.fn}(${v.args.map((a) => JSON.stringify(a)).join(', ')}) = ${JSON.stringify(v.want)}`, () => {
        const fn = FUNCS[v.fn];
        expect(fn, `no mapping for ${v.fn}`).to.be.a('function');
        expect(fn!(v.args)).to.equal(v.want);
      });
    }
  });
});
