// Runs every upstream label-selector vector (selector.vectors.json, copied from k8s.io/apimachinery
// pkg/labels) through parseSelector, the tree's only label-selector parser.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { IgnoreRuleError, parseSelector } from './ignore.ts';

const data = JSON.parse(readFileSync(new URL('./selector.vectors.json', import.meta.url), 'utf8')) as {
  source: { repository: string; path: string; commit: string };
  valid: string[];
  invalid: string[];
  matches: { selector: string; labels: Record<string, string>; match: boolean }[];
};

describe(`label selector vectors (${data.source.repository} ${data.source.path})`, () => {
  for (const text of data.valid) {
    it(`parses ${JSON.stringify(text)}`, () => {
      expect(() => parseSelector(text, 'sel')).to.not.throw();
    });
  }
  for (const text of data.invalid) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(() => parseSelector(text, 'sel')).to.throw(IgnoreRuleError);
    });
  }
  for (const { selector, labels, match } of data.matches) {
    it(`${JSON.stringify(selector)} ${match ? 'matches' : 'does not match'} ${JSON.stringify(labels)}`, () => {
      expect(parseSelector(selector, 'sel')(labels)).to.equal(match);
    });
  }
  it('keeps a key to 63 characters without a prefix (TestRequirementConstructor)', () => {
    expect(() => parseSelector('a'.repeat(254), 'sel')).to.throw(IgnoreRuleError);
  });
});
