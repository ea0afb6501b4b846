import { expect } from 'chai';
import { stringify } from 'yaml';
import { block, each, guard, toTemplate, value } from './template.ts';

const render = (data: unknown) => toTemplate(stringify(data, { lineWidth: 0 }));

describe('chart templating tokens', () => {
  it('a value that is the whole scalar loses its YAML quotes, so the template code decides the type', () => {
    expect(render({ replicas: value<number>('{{ .Values.replicas }}') })).to.equal(
      'replicas: {{ .Values.replicas }}\n',
    );
    expect(render({ image: value('{{ .Values.image | quote }}') })).to.equal('image: {{ .Values.image | quote }}\n');
    expect(render({ args: [value('{{ .Values.a | quote }}')] })).to.equal('args:\n  - {{ .Values.a | quote }}\n');
  });

  it('a value inside a longer string is spliced in place', () => {
    expect(render({ name: `source${value('{{ .Values.suffix }}')}`, n: `${value('{{ .R }}')}-x` })).to.equal(
      'name: source{{ .Values.suffix }}\nn: "{{ .R }}-x"\n',
    );
  });

  it('a block becomes toYaml | nindent at the column below its key, in maps and list items', () => {
    const data = { spec: { resources: block('.Values.r') }, items: [{ env: block('.Values.env'), name: 'x' }] };
    expect(render(data)).to.equal(
      [
        'spec:',
        '  resources: {{- toYaml (.Values.r) | nindent 4 }}',
        'items:',
        '  - env: {{- toYaml (.Values.env) | nindent 6 }}',
        '    name: x',
        '',
      ].join('\n'),
    );
  });

  it('each expands to one quoted list item per element, at the list indentation', () => {
    expect(render({ args: ['--a', each('.Values.extraArgs'), '--b'] })).to.equal(
      [
        'args:',
        '  - --a',
        '  {{- range .Values.extraArgs }}',
        '  - {{ . | quote }}',
        '  {{- end }}',
        '  - --b',
        '',
      ].join('\n'),
    );
  });

  it('literal braces in the data are escaped, so that Helm prints them as written', () => {
    expect(render({ description: 'use {{ .x }} here' })).to.equal('description: use {{ "{{" }} .x }} here\n');
  });

  it('template code with quotes and colons survives YAML quoting', () => {
    const text = '{{ printf "%s: %s" .a .b | quote }}';
    expect(render({ k: value(text), l: [value(text)] })).to.equal(`k: ${text}\nl:\n  - ${text}\n`);
  });

  it('a guard wraps a file in if/end', () => {
    expect(guard('.Values.on', 'a: 1\n')).to.equal('{{- if .Values.on }}\na: 1\n{{- end }}\n');
    expect(guard('.Values.on', 'a: 1')).to.equal('{{- if .Values.on }}\na: 1\n{{- end }}\n');
  });
});
