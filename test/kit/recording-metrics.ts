import type { ServerMetrics } from '../../src/server/authz-server.js';

type DecisionRecord = Parameters<ServerMetrics['recordDecision']>[0];
type KeySetFetchRecord = Parameters<ServerMetrics['recordKeySetFetch']>[0];
type PolicyInfoRecord = Parameters<ServerMetrics['setPolicyInfo']>[0];

/** A `ServerMetrics` that keeps every call, in order, for assertions. */
export class RecordingMetrics implements ServerMetrics {
  readonly decisions: DecisionRecord[] = [];
  readonly keySetFetches: KeySetFetchRecord[] = [];
  readonly policyReloads: ('ok' | 'error')[] = [];
  readonly policyInfo: PolicyInfoRecord[] = [];
  /** A policy directory's files as last reported: name, owner, in force. */
  directoryFiles: readonly { name: string; owner: string | undefined; inForce: boolean }[] = [];

  setPolicyDirectoryFiles(
    files: readonly {
      readonly name: string;
      readonly owner: string | undefined;
      readonly inForce: boolean;
    }[],
  ): void {
    this.directoryFiles = files.map(({ name, owner, inForce }) => ({ name, owner, inForce }));
  }

  recordDecision(input: DecisionRecord): void {
    this.decisions.push(input);
  }

  recordKeySetFetch(input: KeySetFetchRecord): void {
    this.keySetFetches.push(input);
  }

  recordPolicyReload(result: 'ok' | 'error'): void {
    this.policyReloads.push(result);
  }

  setPolicyInfo(input: PolicyInfoRecord): void {
    this.policyInfo.push(input);
  }

  private readChecksInFlight: () => number = () => 0;

  readChecksInFlightFrom(read: () => number): void {
    this.readChecksInFlight = read;
  }

  /** Checks the server has received and not yet answered, now. */
  checksInFlight(): number {
    return this.readChecksInFlight();
  }
}
