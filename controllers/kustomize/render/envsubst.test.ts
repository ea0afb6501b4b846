import { expect } from 'chai';
import { expand, SubstitutionSyntaxError } from './envsubst.ts';

const vars: Record<string, string> = {
  name: 'podinfo',
  region: 'eu-central-1',
  empty: '',
  path: 'dir/file.tar.gz',
  mixed: 'hello World',
  utf: 'héllo',
  dollar: 'a$b',
};
const lookup = (n: string) => vars[n];
const x = (text: string, strict = false) => expand(text, lookup, { strict });

describe('envsubst', () => {
  it('expands ${var} and leaves $var, lone $ and unknown text alone', () => {
    expect(x('app: ${name} in ${region}')).to.equal('app: podinfo in eu-central-1');
    expect(x('echo $name $ $1 ${name}$')).to.equal('echo $name $ $1 podinfo$');
    expect(x('')).to.equal('');
  });

  it('reads $$ as a literal $, so $${var} stays ${var}', () => {
    expect(x('$${name}')).to.equal('${name}');
    expect(x('cost: $$5 and $$$${name}')).to.equal('cost: $5 and $${name}');
    expect(x('$$$')).to.equal('$$');
    expect(x('$$${name}')).to.equal('$podinfo');
  });

  it('gives an undefined variable the empty string unless strict', () => {
    expect(x('[${missing}]')).to.equal('[]');
    expect(() => x('${missing}', true)).to.throw(
      SubstitutionSyntaxError,
      /variable not set \(strict mode\): "missing"/,
    );
    expect(x('[${empty}]', true)).to.equal('[]');
  });

  it('applies defaults when the variable is unset or empty, evaluating nested expressions', () => {
    expect(x('${missing:=dev}')).to.equal('dev');
    expect(x('${missing:-dev}')).to.equal('dev');
    expect(x('${missing=dev}')).to.equal('dev');
    expect(x('${empty:=dev}')).to.equal('dev');
    expect(x('${name:=dev}')).to.equal('podinfo');
    expect(x('${missing:=a-${name}-b}')).to.equal('a-podinfo-b');
    expect(x('${missing:=${other:=deep}}')).to.equal('deep');
    expect(x('${missing:=}')).to.equal('');
    expect(x('${missing:=dev}', true)).to.equal('dev');
    // Flux's parser takes :+ and :? as defaults too.
    expect(x('${missing:+alt}')).to.equal('alt');
    expect(x('${name:?alt}')).to.equal('podinfo');
  });

  it('does not unescape $$ inside a default', () => {
    expect(x('${missing:=$$x}')).to.equal('$$x');
  });

  it('supports length, case and substring functions', () => {
    expect(x('${#name}')).to.equal('7');
    expect(x('${#utf}')).to.equal('6');
    expect(x('${mixed^}|${mixed^^}|${mixed,}|${mixed,,}')).to.equal('Hello World|HELLO WORLD|hello World|hello world');
    expect(x('${name:3}|${name:0:3}|${name:1:-1}|${name:20}|${name:x}|${name:2:2}')).to.equal(
      'info|pod|odinf||podinfo|di',
    );
    // As in bash, `:-` is a default; a negative offset needs a space, which Flux does not parse.
    expect(x('${name:-4}|${name: -2}')).to.equal('podinfo|podinfo');
  });

  it('trims glob prefixes and suffixes, shortest and longest', () => {
    expect(x('${path#*/}')).to.equal('file.tar.gz');
    expect(x('${path%.*}')).to.equal('dir/file.tar');
    expect(x('${path%%.*}')).to.equal('dir/file');
    expect(x('${region##*-}')).to.equal('1');
    expect(x('${region#*-}')).to.equal('central-1');
    expect(x('${region#[a-e]?}')).to.equal('-central-1');
    expect(x('${region#[}')).to.equal('eu-central-1');
    expect(x('${region#zz}')).to.equal('eu-central-1');
  });

  it('replaces substrings literally, with / and \\ escapes', () => {
    expect(x('${region/-/_}')).to.equal('eu_central-1');
    expect(x('${region//-/_}')).to.equal('eu_central_1');
    expect(x('${region/#eu/us}|${region/#central/x}')).to.equal('us-central-1|eu-central-1');
    expect(x('${region/%1/2}|${region/%eu/x}')).to.equal('eu-central-2|eu-central-1');
    expect(x('${region//-/}')).to.equal('eucentral1');
    expect(x('${path/\\//:}')).to.equal('dir:file.tar.gz');
    expect(x('${name/#/pre-}')).to.equal('pre-podinfo');
    expect(x('${dollar/$/S}')).to.equal('aSb');
  });

  it('substitutes values verbatim: a value is never expanded again', () => {
    expect(expand('${a}', (n) => ({ a: '${b}', b: 'no' })[n])).to.equal('${b}');
  });

  it('rejects malformed expressions, naming them', () => {
    for (const bad of [
      '${}',
      '${ name}',
      '${name',
      '${name-x}',
      '${name+x}',
      '${name.x}',
      '${name:}',
      '${name/x}',
      '${name//x}',
      '${name#}',
      '${#}',
      '${missing:=x',
    ]) {
      expect(() => x(`a: ${bad}`), bad).to.throw(SubstitutionSyntaxError, /\$\{/);
    }
    expect(() => x('run: ${@}')).to.throw(/unable to parse variable name in "\$\{@"/);
  });
});
