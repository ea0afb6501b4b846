// Condition types and reasons, as Flux names them. Every reason a controller writes lives here.
export const ConditionType = {
  Ready: 'Ready',
  Reconciling: 'Reconciling',
  Stalled: 'Stalled',
} as const;

export const Reason = {
  Succeeded: 'Succeeded',
  Progressing: 'Progressing',
  ProgressingWithRetry: 'ProgressingWithRetry',
  ReconciliationSucceeded: 'ReconciliationSucceeded',
  ReconciliationFailed: 'ReconciliationFailed',
  DependencyNotReady: 'DependencyNotReady',
  InvalidSpec: 'InvalidSpec',
  Suspended: 'Suspended',
} as const;
