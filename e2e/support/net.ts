import { freePorts } from '../cluster/process.ts';

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}
