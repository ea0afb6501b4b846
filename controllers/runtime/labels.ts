// metav1.LabelSelector as a predicate over an object's labels, with the API server's rules: every
// matchLabels entry and every matchExpressions requirement must hold; an empty selector matches all.

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export class LabelSelectorError extends Error {
  override name = 'LabelSelectorError';
}

/** Compiles `selector`; throws LabelSelectorError naming the requirement that is not valid. */
export function labelSelectorMatcher(selector: LabelSelector | undefined): (labels: Record<string, string>) => boolean {
  const checks: ((labels: Record<string, string>) => boolean)[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) checks.push((l) => l[key] === value);
  for (const [i, req] of (selector?.matchExpressions ?? []).entries()) {
    const values = req.values ?? [];
    const where = `matchExpressions[${i}] (key '${req.key}')`;
    switch (req.operator) {
      case 'In':
      case 'NotIn': {
        if (values.length === 0) throw new LabelSelectorError(`${where}: operator ${req.operator} needs values`);
        const set = new Set(values);
        const isIn = req.operator === 'In';
        checks.push((l) => (req.key in l && set.has(l[req.key]!)) === isIn);
        break;
      }
      case 'Exists':
      case 'DoesNotExist': {
        if (values.length > 0) throw new LabelSelectorError(`${where}: operator ${req.operator} takes no values`);
        const exists = req.operator === 'Exists';
        checks.push((l) => req.key in l === exists);
        break;
      }
      default:
        throw new LabelSelectorError(`${where}: unknown operator '${req.operator}' (In, NotIn, Exists, DoesNotExist)`);
    }
  }
  return (labels) => checks.every((c) => c(labels));
}
