// The controllers tide-controller can run, by the names --controllers takes. Each controller module
// exports its descriptor (name, flags, setup); a name without one is reported as not available yet.
import { helm } from './helm/setup.ts';
import { image } from './image/setup.ts';
import { kustomize } from './kustomize/setup.ts';
import type { ControllerDescriptor } from './runtime/setup.ts';
import { source } from './source/setup.ts';

export const CONTROLLER_NAMES = ['source', 'kustomize', 'helm', 'image', 'notification'] as const;
export type ControllerName = (typeof CONTROLLER_NAMES)[number];

/** The controllers this build has, in the order --help lists them. */
export const CONTROLLERS: readonly ControllerDescriptor[] = [source, kustomize, helm, image];

function descriptor(name: ControllerName): ControllerDescriptor | undefined {
  return CONTROLLERS.find((c) => c.name === name);
}

/** Resolves the --controllers value into the descriptors of this build. */
export function selectControllers(value: string): {
  selected: ControllerDescriptor[];
  unavailable: ControllerName[];
} {
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
      `invalid --controllers "${value}": unknown ${unknown.join(', ')}; ` +
        `use all or a list of ${CONTROLLER_NAMES.join(', ')}`,
    );
  }
  const names = requested as ControllerName[];
  const unavailable = names.filter((n) => !descriptor(n));
  if (value !== 'all' && unavailable.length > 0) {
    throw new Error(
      `--controllers: ${unavailable.join(', ')} not available in this build; ` +
        `available: ${CONTROLLERS.map((c) => c.name).join(', ') || 'none yet'}`,
    );
  }
  return { selected: names.flatMap((n) => descriptor(n) ?? []), unavailable };
}
