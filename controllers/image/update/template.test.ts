// Expected texts were produced by Go's text/template with Sprig's HermeticTxtFuncMap over the same data
// (Flux's TemplateData shape); the first cases are the examples of Flux's ImageUpdateAutomation docs.

import { expect } from 'chai';
import {
  type Change,
  type CommitTemplateData,
  type ObjectIdentifier,
  parseCommitTemplate,
  renderCommitMessage,
  TemplateError,
} from './template.ts';

const podinfo: ObjectIdentifier = { Name: 'podinfo', Namespace: 'apps', APIVersion: 'apps/v1', Kind: 'Deployment' };
const kustomization: ObjectIdentifier = {
  Name: '',
  Namespace: '',
  APIVersion: 'kustomize.config.k8s.io/v1beta1',
  Kind: 'Kustomization',
};
const redis: ObjectIdentifier = { Name: 'Redis', Namespace: 'cache', APIVersion: 'apps/v1', Kind: 'StatefulSet' };

const data: CommitTemplateData = {
  AutomationObject: { Name: 'podinfo-update', Namespace: 'flux-system' },
  Changed: {
    FileChanges: {
      'apps/podinfo/deployment.yaml': new Map<ObjectIdentifier, Change[]>([
        [
          podinfo,
          [
            {
              OldValue: 'ghcr.io/stefanprodan/podinfo:5.0.0',
              NewValue: 'ghcr.io/stefanprodan/podinfo:5.0.3',
              Setter: 'flux-system:podinfo-policy',
            },
          ],
        ],
      ]),
      'apps/cache/kustomization.yaml': new Map<ObjectIdentifier, Change[]>([
        [kustomization, [{ OldValue: '1.25.0', NewValue: '1.25.3', Setter: 'flux-system:nginx:tag' }]],
        [
          redis,
          [
            { OldValue: 'redis:7.0.0', NewValue: 'redis:7.2.4', Setter: 'flux-system:redis' },
            { OldValue: 'v1', NewValue: 'v2', Setter: 'flux-system:exporter:tag' },
          ],
        ],
      ]),
    },
  },
  Values: { cluster: 'prod', env: 'Staging' },
};

describe('commit message template', () => {
  const cases: Array<{ name: string; template: string; want: string }> = [
    {
      name: 'docs: methods example',
      template: [
        'Automated image update\n',
        '\n',
        'Automation name: {{ .AutomationObject }}\n',
        '\n',
        'Files:\n',
        '{{ range $filename, $_ := .Changed.FileChanges -}}\n',
        '- {{ $filename }}\n',
        '{{ end -}}\n',
        '\n',
        'Objects:\n',
        '{{ range $resource, $changes := .Changed.Objects -}}\n',
        '- {{ $resource.Kind }} {{ $resource.Name }}\n',
        '  Changes:\n',
        '{{- range $_, $change := $changes }}\n',
        '    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n',
        '{{ end -}}\n',
        '{{ end -}}\n',
      ].join(''),
      want: [
        'Automated image update\n',
        '\n',
        'Automation name: flux-system/podinfo-update\n',
        '\n',
        'Files:\n',
        '- apps/cache/kustomization.yaml\n',
        '- apps/podinfo/deployment.yaml\n',
        'Objects:\n',
        '- Kustomization \n',
        '  Changes:\n',
        '    - 1.25.0 -> 1.25.3\n',
        '- StatefulSet Redis\n',
        '  Changes:\n',
        '    - redis:7.0.0 -> redis:7.2.4\n',
        '\n',
        '    - v1 -> v2\n',
        '- Deployment podinfo\n',
        '  Changes:\n',
        '    - ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n',
      ].join(''),
    },
    {
      name: 'docs: template functions example',
      template: [
        'Automated image update\n',
        '\n',
        'Automation name: {{ .AutomationObject }}\n',
        '\n',
        'Files:\n',
        '{{ range $filename, $_ := .Changed.FileChanges -}}\n',
        '- {{ $filename }}\n',
        '{{ end -}}\n',
        '\n',
        'Objects:\n',
        '{{ range $resource, $changes := .Changed.Objects -}}\n',
        '- {{ $resource.Kind | lower }} {{ $resource.Name | lower }}\n',
        '  Changes:\n',
        '{{- range $_, $change := $changes }}\n',
        '  {{ if contains "5.0.3" $change.NewValue -}}\n',
        '    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n',
        '  {{ else -}}\n',
        '    [skip ci] wrong image\n',
        '  {{ end -}}\n',
        '{{ end -}}\n',
        '{{ end -}}\n',
      ].join(''),
      want: [
        'Automated image update\n',
        '\n',
        'Automation name: flux-system/podinfo-update\n',
        '\n',
        'Files:\n',
        '- apps/cache/kustomization.yaml\n',
        '- apps/podinfo/deployment.yaml\n',
        'Objects:\n',
        '- kustomization \n',
        '  Changes:\n',
        '  [skip ci] wrong image\n',
        '  - statefulset redis\n',
        '  Changes:\n',
        '  [skip ci] wrong image\n',
        '  \n',
        '  [skip ci] wrong image\n',
        '  - deployment podinfo\n',
        '  Changes:\n',
        '  - ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n',
        '  ',
      ].join(''),
    },
    {
      name: 'docs: messageTemplateValues',
      template: 'Automated image update by Flux for cluster {{ .Values.cluster }}.',
      want: 'Automated image update by Flux for cluster prod.',
    },
    {
      name: 'flux cli --commit-template',
      template: '{{range .Changed.Changes}}{{println .OldValue "->" .NewValue}}{{end}}',
      want: [
        '1.25.0 -> 1.25.3\n',
        'redis:7.0.0 -> redis:7.2.4\n',
        'v1 -> v2\n',
        'ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n',
      ].join(''),
    },
    {
      name: 'changes with setter',
      template: [
        '{{ range .Changed.Changes -}}\n',
        '- {{ .Setter }}: {{ .OldValue }} -> {{ .NewValue }}\n',
        '{{ end -}}',
      ].join(''),
      want: [
        '- flux-system:nginx:tag: 1.25.0 -> 1.25.3\n',
        '- flux-system:redis: redis:7.0.0 -> redis:7.2.4\n',
        '- flux-system:exporter:tag: v1 -> v2\n',
        '- flux-system:podinfo-policy: ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/ste',
        'fanprodan/podinfo:5.0.3\n',
      ].join(''),
    },
    {
      name: 'print structs, slices, maps',
      template: [
        '{{ .Changed.Changes }}\n',
        '{{ .Changed.Objects }}\n',
        '{{ .Values }}\n',
        '{{ .AutomationObject.Name }}|{{ .AutomationObject.Namespace }}',
      ].join(''),
      want: [
        '[{1.25.0 1.25.3 flux-system:nginx:tag} {redis:7.0.0 redis:7.2.4 flux-system:red',
        'is} {v1 v2 flux-system:exporter:tag} {ghcr.io/stefanprodan/podinfo:5.0.0 ghcr.i',
        'o/stefanprodan/podinfo:5.0.3 flux-system:podinfo-policy}]\n',
        'map[{  kustomize.config.k8s.io/v1beta1 Kustomization}:[{1.25.0 1.25.3 flux-syst',
        'em:nginx:tag}] {Redis cache apps/v1 StatefulSet}:[{redis:7.0.0 redis:7.2.4 flux',
        '-system:redis} {v1 v2 flux-system:exporter:tag}] {podinfo apps apps/v1 Deployme',
        'nt}:[{ghcr.io/stefanprodan/podinfo:5.0.0 ghcr.io/stefanprodan/podinfo:5.0.3 flu',
        'x-system:podinfo-policy}]]\n',
        'map[cluster:prod env:Staging]\n',
        'podinfo-update|flux-system',
      ].join(''),
    },
    {
      name: 'printf %+v and %q',
      template: [
        '{{ range .Changed.Changes }}{{ printf "%+v %q %s %v %d%%" . .NewValue .Setter',
        ' 3 42 }}\n',
        '{{ end }}',
      ].join(''),
      want: [
        '{OldValue:1.25.0 NewValue:1.25.3 Setter:flux-system:nginx:tag} "1.25.3" flux-',
        'system:nginx:tag 3 42%\n',
        '{OldValue:redis:7.0.0 NewValue:redis:7.2.4 Setter:flux-system:redis} "redis:7.',
        '2.4" flux-system:redis 3 42%\n',
        '{OldValue:v1 NewValue:v2 Setter:flux-system:exporter:tag} "v2" flux-system:ex',
        'porter:tag 3 42%\n',
        '{OldValue:ghcr.io/stefanprodan/podinfo:5.0.0 NewValue:ghcr.io/stefanprodan/podi',
        'nfo:5.0.3 Setter:flux-system:podinfo-policy} "ghcr.io/stefanprodan/podinfo:5.0',
        '.3" flux-system:podinfo-policy 3 42%\n',
      ].join(''),
    },
    {
      name: 'printf bad verbs',
      template: ['{{ printf "%d %s %t" "x" 1 "y" }}|{{ printf "%s %s" "a" }}|{{ printf ', '"%s" "a" "b" 3 }}'].join(''),
      want: ['%!d(string=x) %!s(int=1) %!t(string=y)|a %!s(MISSING)|a%!(EXTRA string=b, int=3', ')'].join(''),
    },
    {
      name: 'missing key',
      template: [
        '[{{ .Values.nope }}][{{ index .Values "nope" }}][{{ printf "%s" .Values.nop',
        'e }}][{{ default "dflt" .Values.nope }}]',
      ].join(''),
      want: '[<no value>][][%!s(<nil>)][dflt]',
    },
    {
      name: 'if else if',
      template: [
        '{{ if eq .Values.cluster "dev" }}dev{{ else if eq .Values.cluster "prod" }}',
        'production{{ else }}other{{ end }}',
      ].join(''),
      want: 'production',
    },
    {
      name: 'with else',
      template: [
        '{{ with .Values.cluster }}cluster={{ . }}{{ else }}none{{ end }} {{ with .Value',
        's.nope }}x{{ else }}none{{ end }}',
      ].join(''),
      want: 'cluster=prod none',
    },
    {
      name: 'range else',
      template: [
        '{{ range .Values.nope }}x{{ else }}empty{{ end }}|{{ range $i, $c := .Changed.C',
        'hanges }}{{ $i }}={{ $c.NewValue }} {{ end }}',
      ].join(''),
      want: 'empty|0=1.25.3 1=redis:7.2.4 2=v2 3=ghcr.io/stefanprodan/podinfo:5.0.3 ',
    },
    {
      name: 'variables and assignment',
      template: [
        '{{ $n := 0 }}{{ range .Changed.Changes }}{{ $n = len .NewValue }}{{ end }}{{ $n',
        ' }} {{ $x := "a" }}{{ if true }}{{ $x := "b" }}{{ $x }}{{ end }}{{ $x }}',
      ].join(''),
      want: '34 ba',
    },
    {
      name: 'root variable in range',
      template: ['{{ range .Changed.Changes }}{{ $.AutomationObject.Name }}:{{ .Setter }} {{ end ', '}}'].join(''),
      want: [
        'podinfo-update:flux-system:nginx:tag podinfo-update:flux-system:redis podinfo-u',
        'pdate:flux-system:exporter:tag podinfo-update:flux-system:podinfo-policy ',
      ].join(''),
    },
    {
      name: 'comments and trim',
      template: ['a  {{- /* a comment */ -}}  b\n', '{{/* another */}}c {{- 3 -}} d {{ -3 }}'].join(''),
      want: ['ab\n', 'c3d -3'].join(''),
    },
    {
      name: 'literals',
      template: [
        '{{ "q\\t\\"x\\"" }} {{ `raw\\n` }} {{ 1.5 }} {{ 0x1F }} {{ true }} {{ print',
        " nil }} {{ 'a' }}",
      ].join(''),
      want: 'q\t"x" raw\\n 1.5 31 true <nil> 97',
    },
    {
      name: 'and or not',
      template: [
        '{{ and 1 0 "x" }} {{ and 1 2 "x" }} {{ or 0 "" "y" }} {{ or 0 "" }} {',
        '{ not .Values.cluster }} {{ not "" }}',
      ].join(''),
      want: '0 x y  false true',
    },
    {
      name: 'comparisons',
      template: ['{{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1 2 }} {{ ne "a" "b" }', '} {{ eq 3 1 2 3 }}'].join(
        '',
      ),
      want: 'true true true false true true',
    },
    {
      name: 'len index',
      template: [
        '{{ len .Changed.Changes }} {{ len .Changed.FileChanges }} {{ len "h\u00e9llo"',
        ' }} {{ (index .Changed.Changes 1).NewValue }} {{ index (list 1 (list 2 3)) 1 0 ',
        '}}',
      ].join(''),
      want: '4 2 6 redis:7.2.4 2',
    },
    {
      name: 'print println',
      template: '{{ print "a" 1 2 "b" "c" 3 }}|{{ println "a" 1 }}|{{ print }}',
      want: ['a1 2bc3|a 1\n', '|'].join(''),
    },
    {
      name: 'parenthesized pipelines',
      template: [
        '{{ (printf "%s-%s" "a" "b") | upper }} {{ len (printf "%s" .Values.clus',
        'ter) }} {{ (.Changed.Objects | len) }}',
      ].join(''),
      want: 'A-B 4 3',
    },
    {
      name: 'sprig strings',
      template: [
        '{{ "  hi  " | trim }}|{{ upper "abc" }}|{{ lower "ABC" }}|{{ title "hell',
        'o wide-world foo_bar" }}|{{ replace "." "-" "1.2.3" }}|{{ quote "a" "',
        'b\\"c" }}|{{ squote "x" 1 }}',
      ].join(''),
      want: 'hi|ABC|abc|Hello Wide-World Foo_bar|1-2-3|"a" "b\\"c"|\'x\' \'1\'',
    },
    {
      name: 'sprig predicates',
      template: [
        '{{ contains "ell" "hello" }} {{ hasPrefix "he" "hello" }} {{ hasSuffix ',
        '"lo" "hello" }} {{ empty "" }} {{ empty 0 }} {{ empty .Values }} {{ empty',
        ' (list) }} {{ empty .AutomationObject }}',
      ].join(''),
      want: 'true true true true true false true false',
    },
    {
      name: 'sprig lists',
      template: [
        '{{ list 1 "a" 2 }} {{ join ", " (list "b" "a" 3) }} {{ first (list "x"',
        ' "y") }} {{ last (list "x" "y") }} {{ uniq (list 1 1 2 "a" "a") }} {{',
        ' sortAlpha (list "c" "a" "b") }}',
      ].join(''),
      want: '[1 a 2] b, a, 3 x y [1 2 a] [a b c]',
    },
    {
      name: 'sprig dict keys',
      template: [
        '{{ $d := dict "b" 2 "a" 1 }}{{ $d }} {{ keys $d | sortAlpha }} {{ $d.a }} {',
        '{ index $d "zz" }} {{ toString 42 }} {{ default "d" "" }} {{ default "d"',
        ' "v" }}',
      ].join(''),
      want: 'map[a:1 b:2] [a b] 1 <no value> 42 d v',
    },
    {
      name: 'indent nindent trunc',
      template: [
        'x:{{ "a\\nb" | indent 2 }}\n',
        'y:{{ "a\\nb" | nindent 4 }}\n',
        '{{ trunc 3 "abcdef" }} {{ trunc -2 "abcdef" }} {{ trunc 10 "abc" }}',
      ].join(''),
      want: ['x:  a\n', '  b\n', 'y:\n', '    a\n', '    b\n', 'abc ef abc'].join(''),
    },
    {
      name: 'join setters',
      template: [
        '{{ $s := list }}{{ range .Changed.Changes }}{{ $s = append $s .Setter }}{{ end ',
        '}}{{ join "," $s }} {{ has "flux-system:redis" $s }} {{ splitList ":" "a',
        ':b" }} {{ trimAll "-" "--x--" }} {{ prepend (list 1) 0 }}',
      ].join(''),
      want: [
        'flux-system:nginx:tag,flux-system:redis,flux-system:exporter:tag,flux-system:po',
        'dinfo-policy true [a b] x [0 1]',
      ].join(''),
    },
    {
      name: 'join new values',
      template: [
        'Update {{ range $i, $c := .Changed.Changes }}{{ if $i }}, {{ end }}{{ $c.NewVal',
        'ue }}{{ end }}',
      ].join(''),
      want: 'Update 1.25.3, redis:7.2.4, v2, ghcr.io/stefanprodan/podinfo:5.0.3',
    },
    {
      name: 'kustomization objects',
      template: [
        '{{ range $id, $cs := .Changed.Objects }}{{ $id.Kind }}/{{ $id.Name | default "',
        '<unnamed>" }} {{ $id }}\n',
        '{{ end }}',
      ].join(''),
      want: [
        'Kustomization/<unnamed> {  kustomize.config.k8s.io/v1beta1 Kustomization}\n',
        'StatefulSet/Redis {Redis cache apps/v1 StatefulSet}\n',
        'Deployment/podinfo {podinfo apps apps/v1 Deployment}\n',
      ].join(''),
    },
    {
      name: 'file changes nested',
      template: [
        '{{ range $file, $objs := .Changed.FileChanges }}{{ $file }}:\n',
        '{{ range $id, $cs := $objs }}  {{ $id.APIVersion }} {{ len $cs }}\n',
        '{{ end }}{{ end }}',
      ].join(''),
      want: [
        'apps/cache/kustomization.yaml:\n',
        '  kustomize.config.k8s.io/v1beta1 1\n',
        '  apps/v1 2\n',
        'apps/podinfo/deployment.yaml:\n',
        '  apps/v1 1\n',
      ].join(''),
    },
    {
      name: 'break continue',
      template: [
        '{{ range $i, $c := .Changed.Changes }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{',
        ' if eq $i 2 }}{{ break }}{{ end }}{{ $c.Setter }};{{ end }}',
      ].join(''),
      want: 'flux-system:nginx:tag;',
    },
    {
      name: 'values title',
      template: ['{{ .Values.env | lower | title }} {{ .Values.cluster | upper | printf "[%s]" ', '}}'].join(''),
      want: 'Staging [PROD]',
    },
    {
      name: 'chain on parens',
      template: '{{ (index .Changed.Changes 0).Setter }} {{ (.Changed).FileChanges | len }}',
      want: 'flux-system:nginx:tag 2',
    },
    {
      name: 'docs: gerrit Change-Id',
      template: [
        'Perform automatic image update\n',
        '\n',
        'Automation name: {{ .AutomationObject }}\n',
        '\n',
        '{{- $ChangeId := .AutomationObject -}}\n',
        '{{- $ChangeId = printf "%s%s" $ChangeId ( .Changed.FileChanges | toString ) -',
        '}}\n',
        '{{- $ChangeId = printf "%s%s" $ChangeId ( .Changed.Objects | toString ) -}}\n',
        '{{- $ChangeId = printf "%s%s" $ChangeId ( .Changed.Changes | toString ) }}\n',
        'Change-Id: {{ printf "I%s" ( sha256sum $ChangeId | trunc 40 ) }}\n',
      ].join(''),
      want: [
        'Perform automatic image update\n',
        '\n',
        'Automation name: flux-system/podinfo-update\n',
        'Change-Id: I7bf93c7af5d23caceae0f266810f1f8e1952351d\n',
      ].join(''),
    },
    {
      name: 'print Changed',
      template: [
        '{{ .Changed }}\n',
        '{{ .Changed | toString }}\n',
        '{{ printf "%v" .AutomationObject }} {{ printf "%s" .AutomationObject }} {{ ',
        'printf "%+v" .AutomationObject }}',
      ].join(''),
      want: [
        '{map[apps/cache/kustomization.yaml:map[{  kustomize.config.k8s.io/v1beta1 Kusto',
        'mization}:[{1.25.0 1.25.3 flux-system:nginx:tag}] {Redis cache apps/v1 Stateful',
        'Set}:[{redis:7.0.0 redis:7.2.4 flux-system:redis} {v1 v2 flux-system:exporter:t',
        'ag}]] apps/podinfo/deployment.yaml:map[{podinfo apps apps/v1 Deployment}:[{ghcr',
        '.io/stefanprodan/podinfo:5.0.0 ghcr.io/stefanprodan/podinfo:5.0.3 flux-system:p',
        'odinfo-policy}]]]}\n',
        '{map[apps/cache/kustomization.yaml:map[{  kustomize.config.k8s.io/v1beta1 Kusto',
        'mization}:[{1.25.0 1.25.3 flux-system:nginx:tag}] {Redis cache apps/v1 Stateful',
        'Set}:[{redis:7.0.0 redis:7.2.4 flux-system:redis} {v1 v2 flux-system:exporter:t',
        'ag}]] apps/podinfo/deployment.yaml:map[{podinfo apps apps/v1 Deployment}:[{ghcr',
        '.io/stefanprodan/podinfo:5.0.0 ghcr.io/stefanprodan/podinfo:5.0.3 flux-system:p',
        'odinfo-policy}]]]}\n',
        'flux-system/podinfo-update flux-system/podinfo-update flux-system/podinfo-updat',
        'e',
      ].join(''),
    },
    {
      name: 'crlf and tabs trimmed',
      template: ['a\r\n', '\t {{- "b" -}} \r\n', '\tc\r\n', '{{ "d" }}\r\n'].join(''),
      want: ['abc\r\n', 'd\r\n'].join(''),
    },
    {
      name: 'multi-line action',
      template: ['{{ printf "%s-%s"\n', '  "a"\n', '  "b" }}\n', '{{- if\n', '  true }}\n', 'yes{{ end }}'].join(''),
      want: ['a-b\n', 'yes'].join(''),
    },
    {
      name: 'else with',
      template: ['{{ with .Values.nope }}a{{ else with .Values.cluster }}b={{ . }}{{ else }}c{{ e', 'nd }}'].join(''),
      want: 'b=prod',
    },
    {
      name: 'range over int',
      template: '{{ range 3 }}{{ . }},{{ end }}{{ range $i := 2 }}[{{ $i }}]{{ end }}',
      want: '0,1,2,[0][1]',
    },
    {
      name: 'dash without space is a number',
      template: '{{-3}} {{ -3 }}x {{- -3 }} {{+4}}',
      want: '-3 -3x-3 4',
    },
    {
      name: 'with declares var',
      template: ['{{ with $c := index .Changed.Changes 0 }}{{ $c.Setter }} {{ .NewValue }}{{ end ', '}}'].join(''),
      want: 'flux-system:nginx:tag 1.25.3',
    },
    {
      name: 'nested ranges and $',
      template: [
        '{{ range $f, $o := .Changed.FileChanges }}{{ range $id, $cs := $o }}{{ range $c',
        's }}{{ $f }}|{{ $id.Kind }}|{{ .Setter }}|{{ $.Values.cluster }}\n',
        '{{ end }}{{ end }}{{ end }}',
      ].join(''),
      want: [
        'apps/cache/kustomization.yaml|Kustomization|flux-system:nginx:tag|prod\n',
        'apps/cache/kustomization.yaml|StatefulSet|flux-system:redis|prod\n',
        'apps/cache/kustomization.yaml|StatefulSet|flux-system:exporter:tag|prod\n',
        'apps/podinfo/deployment.yaml|Deployment|flux-system:podinfo-policy|prod\n',
      ].join(''),
    },
    {
      name: 'range single var over map',
      template: [
        '{{ range $v := .Values }}{{ $v }};{{ end }} {{ range .Values }}{{ . }};{{ end }',
        '} {{ range $k, $v := .Values }}{{ $k }}={{ $v }};{{ end }}',
      ].join(''),
      want: 'prod;Staging; prod;Staging; cluster=prod;env=Staging;',
    },
    {
      name: 'method via variable',
      template: [
        '{{ $c := .Changed }}{{ len $c.Changes }} {{ len $.Changed.Objects }} {{ with .C',
        'hanged }}{{ len .Changes }}{{ end }}',
      ].join(''),
      want: '4 3 4',
    },
    {
      name: 'comment forms',
      template: ['a{{/* c */}}b {{- /* c */}} c{{/* c */ -}} d\n', '{{- /* multi\n', 'line */ -}}\n', 'e'].join(''),
      want: 'ab cde',
    },
    {
      name: 'empty template',
      template: '',
      want: '',
    },
    {
      name: 'only text',
      template: 'Update from image update automation',
      want: 'Update from image update automation',
    },
    {
      name: 'index values',
      template: [
        '{{ index .Values "cluster" }} [{{ index .Values "missing" }}] {{ index .Cha',
        'nged.FileChanges "apps/podinfo/deployment.yaml" | len }}',
      ].join(''),
      want: 'prod [] 1',
    },
    {
      name: 'printf width',
      template: ['[{{ printf "%5s|%-5s|%05d|%x|%X|%.2f|%t" "ab" "cd" 42 255 "hi" 3.14159 ', 'true }}]'].join(''),
      want: '[   ab|cd   |00042|ff|6869|3.14|true]',
    },
    {
      name: 'eq nil and missing',
      template: '{{ eq .Values.nope "x" }} {{ ne .Values.cluster "x" }} {{ eq "a" "a" }}',
      want: 'false true true',
    },
    {
      name: 'quote special',
      template: '{{ quote "tab\\there" "nl\\n" "\u00e9" }} {{ printf "%q" "\\x01" }}',
      want: '"tab\\there" "nl\\n" "\u00e9" "\\x01"',
    },
    {
      name: 'title variants',
      template: '{{ title "hello-world, it\'s x.y_z 9am" }}',
      want: "Hello-World, It'S X.Y_z 9am",
    },
    {
      name: 'default with lists',
      template: '{{ default "x" (list) }} {{ default (list 1) (list 2) }} {{ default 5 0 }}',
      want: 'x [2] 5',
    },
    {
      name: 'print mixed',
      template: [
        '{{ print 1 2 }} {{ print "a" "b" }} {{ print 1 "a" 2 }} {{ print (list 1)',
        ' (list 2) }} {{ print true false }}',
      ].join(''),
      want: '1 2 ab 1a2 [1] [2] true false',
    },
    {
      name: 'println values',
      template: '{{ println .Values.cluster (list 1 2) }}end',
      want: ['prod [1 2]\n', 'end'].join(''),
    },
    {
      name: 'pipeline final arg',
      template: [
        '{{ "a" | printf "%s-%s" "b" }} {{ .Values.cluster | replace "o" "0" |',
        ' upper }} {{ 3 | eq 3 }}',
      ].join(''),
      want: 'b-a PR0D true',
    },
    {
      name: 'and/or shortcircuit',
      template: ['{{ and .Values.nope .Values.nope.X }} {{ or .Values.cluster (index .Changed.Cha', 'nges 99) }}'].join(
        '',
      ),
      want: '<no value> prod',
    },
  ];

  for (const c of cases) {
    it(`renders as Go does: ${c.name}`, () => {
      expect(renderCommitMessage(c.template, data)).to.equal(c.want);
    });
  }

  const parseErrors: Array<{ template: string; want: string }> = [
    { template: '{{ .Values.cluster } }}', want: 'template: commit:1: unexpected "}" in operand' },
    { template: 'line1\n{{ .Values.cluster ', want: 'template: commit:2: unclosed action' },
    { template: 'a\nb {{ nope .Values }}', want: 'template: commit:2: function "nope" not defined' },
    { template: '{{ if .Values.cluster }}x', want: 'template: commit:1: unexpected EOF' },
    { template: 'x{{ end }}', want: 'template: commit:1: unexpected {{end}}' },
    { template: 'x{{ else }}', want: 'template: commit:1: unexpected {{else}}' },
    { template: '{{ $x }}', want: 'template: commit:1: undefined variable "$x"' },
    { template: '{{ }}', want: 'template: commit:1: missing value for command' },
    { template: '{{ "abc }}', want: 'template: commit:1: unterminated quoted string' },
    { template: '{{ (len "a" }}', want: 'template: commit:1: unclosed left paren' },
    { template: '{{/* x }}', want: 'template: commit:1: unclosed comment' },
    {
      template: '{{ if true }}a{{ else }}b{{ else }}c{{ end }}',
      want: 'template: commit:1: expected end; found {{else}}',
    },
    { template: '{{ break }}', want: 'template: commit:1: {{break}} outside {{range}}' },
    { template: '{{ if }}x{{ end }}', want: 'template: commit:1: missing value for if' },
    { template: '{{ 3x }}', want: 'template: commit:1: bad number syntax: "3x"' },
    { template: '{{ "a".b }}', want: 'template: commit:1: unexpected . after term "\\"a\\""' },
    { template: '{{ if $a, $b := 1 }}{{ end }}', want: 'template: commit:1: too many declarations in if' },
    { template: '{{ if 1 }}{{ end 1 }}', want: 'template: commit:1: unexpected "1" in end' },
    { template: '{{ 1 | 2 }}', want: 'template: commit:1: non executable command in pipeline stage 2' },
    { template: 'a\nb\n{{ if true }}\n{{ .Values', want: 'template: commit:4: unclosed action' },
  ];
  const execErrors: Array<{ template: string; want: string }> = [
    {
      template: '{{ .Values.cluster.Foo }}',
      want: [
        'template: commit:1:10: executing "commit" at <.Values.cluster.Foo>: can\'t eva',
        'luate field Foo in type string',
      ].join(''),
    },
    {
      template: '{{ upper }}',
      want: [
        'template: commit:1:3: executing "commit" at <upper>: wrong number of args for',
        ' upper: want 1 got 0',
      ].join(''),
    },
    {
      template: '{{ .Nope }}',
      want: [
        'template: commit:1:3: executing "commit" at <.Nope>: can\'t evaluate field Nop',
        'e in type source.TemplateData',
      ].join(''),
    },
    { template: '{{ nil }}', want: 'template: commit:1:3: executing "commit" at <nil>: nil is not a command' },
    {
      template: '{{ .Values.cluster 1 }}',
      want: [
        'template: commit:1:10: executing "commit" at <.Values.cluster>: cluster is no',
        't a method but has arguments',
      ].join(''),
    },
    {
      template: '{{ index .Changed.Changes 99 }}',
      want: [
        'template: commit:1:3: executing "commit" at <index .Changed.Changes 99>: erro',
        'r calling index: index out of range: 99',
      ].join(''),
    },
    {
      template: '{{ range .Values.cluster }}x{{ end }}',
      want: ['template: commit:1:16: executing "commit" at <.Values.cluster>: range can\'t i', 'terate over prod'].join(
        '',
      ),
    },
    {
      template: '{{ lt 1 "a" }}',
      want: [
        'template: commit:1:3: executing "commit" at <lt 1 "a">: error calling lt: i',
        'ncompatible types for comparison: int and string',
      ].join(''),
    },
    {
      template: '{{ (index .Changed.Changes 0).Nope }}',
      want: [
        'template: commit:1:27: executing "commit" at <0>: can\'t evaluate field Nope i',
        'n type update.Change',
      ].join(''),
    },
    {
      template: '{{ eq 1 "a" }}',
      want: [
        'template: commit:1:3: executing "commit" at <eq 1 "a">: error calling eq: i',
        'ncompatible types for comparison: int and string',
      ].join(''),
    },
    {
      template: '{{ "a" | upper "b" }}',
      want: [
        'template: commit:1:9: executing "commit" at <upper>: wrong number of args for',
        ' upper: want 1 got 2',
      ].join(''),
    },
  ];

  for (const c of parseErrors) {
    it(`refuses to parse ${JSON.stringify(c.template)}`, () => {
      expect(() => parseCommitTemplate(c.template))
        .to.throw(TemplateError)
        .with.property('message', c.want);
    });
  }

  for (const c of execErrors) {
    it(`fails to execute ${JSON.stringify(c.template)}`, () => {
      expect(() => renderCommitMessage(c.template, data))
        .to.throw(TemplateError)
        .with.property('message', c.want);
    });
  }

  it("refuses the removed .Updated field with Flux's message", () => {
    const want =
      "template uses removed '.Updated' field. Please use '.Changed' instead. " +
      'See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template';
    for (const t of ['{{ range .Updated.Images }}{{ . }}{{ end }}', '{{ with .Values }}{{ $.Updated }}{{ end }}']) {
      expect(() => parseCommitTemplate(t))
        .to.throw(TemplateError)
        .with.property('message', want);
    }
  });

  it("refuses the removed .Changed.ImageResult field with Flux's message", () => {
    const want =
      "template uses removed '.Changed.ImageResult' field. Please use '.Changed.FileChanges' or " +
      "'.Changed.Objects' instead. " +
      'See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template';
    expect(() => parseCommitTemplate('{{ range .Changed.ImageResult.Files }}{{ end }}'))
      .to.throw(TemplateError)
      .with.property('message', want);
  });

  it('executes a parsed template more than once', () => {
    const parsed = parseCommitTemplate('{{ .AutomationObject }}: {{ len .Changed.Changes }} changes');
    expect(renderCommitMessage(parsed, data)).to.equal('flux-system/podinfo-update: 4 changes');
    const other: CommitTemplateData = { ...data, AutomationObject: { Name: 'b', Namespace: 'a' } };
    expect(renderCommitMessage(parsed, other)).to.equal('a/b: 4 changes');
  });

  it('merges an object changed in several files in .Changed.Objects', () => {
    const id = (): ObjectIdentifier => ({ Name: 'app', Namespace: 'ns', APIVersion: 'v1', Kind: 'Pod' });
    const twice: CommitTemplateData = {
      AutomationObject: { Name: 'n', Namespace: 'ns' },
      Changed: {
        FileChanges: {
          'b.yaml': new Map([[id(), [{ OldValue: '2', NewValue: '3', Setter: 's:b' }]]]),
          'a.yaml': new Map([[id(), [{ OldValue: '1', NewValue: '2', Setter: 's:a' }]]]),
        },
      },
    };
    const t = '{{ range $id, $cs := .Changed.Objects }}{{ $id.Name }}:{{ range $cs }} {{ .Setter }}{{ end }}{{ end }}';
    expect(renderCommitMessage(t, twice)).to.equal('app: s:a s:b');
  });

  it('prints <no value> for a missing .Values map and an empty message for no changes', () => {
    const bare: CommitTemplateData = { AutomationObject: { Name: 'n', Namespace: 'ns' }, Changed: { FileChanges: {} } };
    expect(renderCommitMessage('{{ .Values.x }}|{{ range .Changed.Changes }}x{{ end }}', bare)).to.equal('<no value>|');
  });
});
