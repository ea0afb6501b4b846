// The controllers tide-controller can run, by the names --controllers takes. Each later issue
// registers its setup here; a name without a setup is reported as not available yet.
import type { Manager } from './runtime/manager.ts';
import { setupKustomize } from './kustomize/setup.ts';
import { setupSource } from './source/setup.ts';

export const CONTROLLER_NAMES = ['source', 'kustomize', 'helm', 'image', 'notification'] as const;
export type ControllerName = (typeof CONTROLLER_NAMES)[number];

export interface SetupContext {
  manager: Manager;
  args: Record<string, string | undefined>;
}

export type Setup = (ctx: SetupContext) => Promise<void> | void;

export const SETUPS: Partial<Record<ControllerName, Setup>> = { source: setupSource, kustomize: setupKustomize };

/** Resolves the --controllers value into names that have a setup. */
export function selectControllers(value: string): { selected: ControllerName[]; unavailable: ControllerName[] } {
  const requested =
    value === 'all'
      ? [...CONTROLLER_NAMES]
      : value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  const unknown = requested.filter((n) => !(CONTROLLER_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `invalid --controllers "${value}": unknown ${unknown.join(', ')}; use all or a list of ${CONTROLLER_NAMES.join(', ')}`,
    );
  }
  const names = requested as ControllerName[];
  const unavailable = names.filter((n) => !SETUPS[n]);
  if (value !== 'all' && unavailable.length > 0) {
    throw new Error(
      `--controllers: ${unavailable.join(', ')} not available in this build; available: ${available().join(', ') || 'none yet'}`,
    );
  }
  return { selected: names.filter((n) => SETUPS[n]), unavailable };
}

function available(): string[] {
  return CONTROLLER_NAMES.filter((n) => SETUPS[n]);
}
