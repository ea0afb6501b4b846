// The contract between tide-controller and a controller: each controller module exports one
// descriptor naming it, declaring its flags and wiring it into a manager with typed options.
import type { Manager } from './manager.ts';
import { parseOptions, readArgs, type FlagGroup, type FlagSet, type Options } from './options.ts';

export interface SetupContext<O> {
  manager: Manager;
  options: O;
}

export interface ControllerDescriptor<F extends FlagSet = FlagSet> {
  /** The name --controllers takes, e.g. "kustomize". */
  name: string;
  flags: F;
  // A method, so that a descriptor with its own options is still a ControllerDescriptor<FlagSet>.
  setup(ctx: SetupContext<Options<F>>): Promise<void> | void;
}

/** Infers the options type of setup from the flags. */
export function defineController<F extends FlagSet>(descriptor: ControllerDescriptor<F>): ControllerDescriptor<F> {
  return descriptor;
}

/** The flags of a controller as --help heads them and errors name them. */
export function flagGroup<F extends FlagSet>(c: ControllerDescriptor<F>): FlagGroup<F> {
  return { title: `${c.name} controller`, named: true, flags: c.flags };
}

/** A controller's options from its own flags alone (for tests and tools that run one controller). */
export function optionsFrom<F extends FlagSet>(c: ControllerDescriptor<F>, argv: readonly string[]): Options<F> {
  const group = flagGroup(c);
  return parseOptions(group, readArgs(argv, [group]));
}
