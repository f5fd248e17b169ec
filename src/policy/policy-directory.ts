import { join } from 'node:path';
import { parse } from 'yaml';
import type { CompiledPolicy, CompiledService, UnavailableServices } from './compiled-policy.js';
import { checkSchema, compilePolicyDocument, parsePolicyYaml } from './compile-policy.js';
import { hostPatternProblem } from './compile-services.js';
import type { PolicyDocument, RootDocument, ServiceFileDocument } from './policy-document.js';
import {
  ROOT_FILE_KEYS,
  ROOT_FILE_NAMES,
  ROOT_ONLY_KEYS,
  validateRootFile,
  validateServiceFile,
} from './policy-directory-schema.js';
import {
  formatPolicyProblem,
  PolicyError,
  type PolicyErrorCode,
  type PolicyProblem,
} from './policy-error.js';
import { policyFindings, type PolicyFinding } from './policy-findings.js';
import { policyVersion } from './policy-version.js';
import { AssembledLocator, type Locator } from './problem-locator.js';
import type { TextFileRead } from './read-text-file.js';
import { guardRefusal } from './reload-judge.js';
import { createServiceSelector } from './service-selector.js';
import {
  claimConflicts,
  describeClaim,
  serviceFileClaims,
  type ClaimConflict,
  type ServiceFileClaims,
} from './service-file-claims.js';
import { displayYamlPath, type YamlPath } from './yaml-locations.js';

/**
 * A policy directory (docs/policy.md, "A policy directory"): a root file (`_gateway.yaml`) the platform
 * team owns, with the issuers and defaults and the service files it admits, and one service file per team
 * (`owner`, `services`). Each service file is judged on its own against the root, so that one team's bad
 * save is refused alone while every other file's change applies; the files in force are then merged into
 * one compiled policy, and whatever two files would both claim (a service name, a host, a claim header) is
 * a conflict the later file loses. Pure: the files are read by `readPolicyDirectory`.
 */

/** One policy file of a directory, as read. */
export interface PolicyFileRead {
  /** Its name in the directory. */
  readonly name: string;
  readonly read: TextFileRead;
}

/** A directory's policy files as read (`readPolicyDirectory`), or why the directory cannot be listed. */
export type PolicyDirectoryListing =
  | { readonly folder: string; readonly files: readonly PolicyFileRead[] }
  | { readonly folder: string; readonly problem: string };

/** The root file, compiled. */
export interface RootVersion {
  /** The directory. */
  readonly folder: string;
  readonly name: string;
  readonly file: string;
  readonly text: string;
  readonly document: RootDocument;
  readonly locator: Locator;
}

/** A service file version accepted against a root. */
export interface ServiceFileVersion {
  readonly name: string;
  readonly file: string;
  readonly text: string;
  readonly owner: string;
  readonly document: ServiceFileDocument;
  readonly locator: Locator;
  /** Its own findings (each with `file`), from compiling it with the root alone. */
  readonly findings: readonly PolicyFinding[];
  readonly claims: ServiceFileClaims;
}

/** What is in force from a directory: the root, each service file's version in force, and their merge. */
export interface DirectoryInForce {
  readonly folder: string;
  readonly root: RootVersion;
  readonly files: ReadonlyMap<string, ServiceFileVersion>;
  readonly policy: CompiledPolicy;
  /** The findings of the policy in force: the root's, then each service file's, each with its `file`. */
  readonly findings: readonly PolicyFinding[];
}

/**
 * How one file came out of a judgement: `accepted` (its version on disk is now in force), `unchanged`
 * (it was already), `refused` (see `serving`), `removed` (gone, and its services with it), `not_admitted`
 * (the root's `service_files` do not admit it: it serves nothing).
 */
export type FileOutcome = 'accepted' | 'unchanged' | 'refused' | 'removed' | 'not_admitted';

/** One file's part in a judgement, for the reload log, health, metrics and `check-policy`. */
export interface FileVerdict {
  readonly name: string;
  readonly file: string;
  readonly role: 'root' | 'service';
  /** The file's `owner`, from the version judged, else the version in force; undefined when unknown. */
  readonly owner: string | undefined;
  readonly outcome: FileOutcome;
  /** Whether what is on disk is what is in force (false for a refused or not admitted file). */
  readonly inForce: boolean;
  /** What of the file is in force: the version on disk, the last good one, or nothing. */
  readonly serving: 'current' | 'last_good' | 'none';
  /** Why it was refused. */
  readonly code?: PolicyErrorCode;
  readonly problems?: readonly string[];
  /** The services in force from this file. */
  readonly services: readonly string[];
}

/** A directory judged: what is in force now, and each file's verdict (the root first, then by name). */
export interface DirectoryJudgement {
  readonly inForce: DirectoryInForce;
  readonly verdicts: readonly FileVerdict[];
}

/**
 * The version of a directory's files: the hash of the root's name and text, then each other file's, in
 * name order. Of the merged policy, over the files in force; of a listing, over every file read, so that
 * a directory whose every file is in force has the version in force.
 */
export function directoryVersion(files: readonly PolicyFileRead[]): string {
  const roots = files.filter((f) => ROOT_FILE_NAMES.includes(f.name));
  const others = files.filter((f) => !ROOT_FILE_NAMES.includes(f.name));
  others.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return policyVersion(
    [...roots, ...others]
      .flatMap((f) => [f.name, 'text' in f.read ? f.read.text : `\u0001${f.read.problem}`])
      .join('\u0000'),
  );
}

/** Whether a name is a policy file of a directory: `*.yaml`/`*.yml`, no dotfile, no policy test file. */
export function isPolicyFileName(name: string): boolean {
  return /\.ya?ml$/.test(name) && !name.startsWith('.') && !/\.test\.ya?ml$/.test(name);
}

type Refusal = { readonly code: PolicyErrorCode; readonly problems: readonly string[] };

/**
 * Judges a directory's files against what is in force (undefined at start-up). A refused root keeps the
 * root in force, and the service files are judged against that one; a refused service file keeps its last
 * good version (if it has one).
 *
 * @throws PolicyError at start-up when there is no usable root: nothing can be served.
 */
export function judgePolicyDirectory(
  listing: PolicyDirectoryListing,
  previous: DirectoryInForce | undefined,
  startGuard?: 'off',
): DirectoryJudgement {
  const folder = listing.folder;
  const rootRead = findRoot(listing);
  if ('refusal' in rootRead) {
    if (previous === undefined) throw startError(rootRead.refusal, rootRead.file ?? folder);
    return withRootInForce(listing, previous, rootRead.refusal, rootRead.file);
  }
  const { name, text, file } = rootRead;
  if (previous !== undefined && text === previous.root.text) return withRootInForce(listing, previous);
  let root: RootVersion;
  try {
    root = compileRoot(folder, name, text);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    const refusal = { code: error.code, problems: error.problems.map(formatPolicyProblem) };
    if (previous === undefined) throw error;
    return withRootInForce(listing, previous, refusal, file);
  }
  const judgement = judgeFiles(listing, previous, root, true, undefined, undefined, startGuard);
  if ('refusal' in judgement) {
    // The new root would break files in force, or brings new error findings: the root in force stays.
    if (previous === undefined) throw startError(judgement.refusal, file);
    return withRootInForce(listing, previous, judgement.refusal, file);
  }
  return judgement;
}

/** The service files judged against the root in force: the root on disk is that one, or refused. */
function withRootInForce(
  listing: PolicyDirectoryListing,
  previous: DirectoryInForce,
  rootRefusal?: Refusal,
  refusedRootFile?: string,
): DirectoryJudgement {
  const judgement = judgeFiles(listing, previous, previous.root, false, rootRefusal, refusedRootFile);
  // judgeFiles refuses only a root that changed; the root in force lived with every file in force.
  if ('refusal' in judgement) throw new Error('the root in force was refused');
  return judgement;
}

function findRoot(
  listing: PolicyDirectoryListing,
):
  | { readonly name: string; readonly file: string; readonly text: string }
  | { readonly refusal: Refusal; readonly file?: string } {
  const { folder } = listing;
  if ('problem' in listing)
    return { refusal: { code: 'ERR_POLICY_DIRECTORY', problems: [`${folder}: ${listing.problem}`] } };
  const roots = listing.files.filter((f) => ROOT_FILE_NAMES.includes(f.name));
  if (roots.length === 0) {
    return {
      refusal: {
        code: 'ERR_POLICY_DIRECTORY',
        problems: [
          `${folder}: a policy directory needs a root file, ${ROOT_FILE_NAMES[0]}, with the issuers, defaults and service_files (docs/policy.md, "A policy directory")`,
        ],
      },
    };
  }
  if (roots.length > 1) {
    return {
      refusal: {
        code: 'ERR_POLICY_DIRECTORY',
        problems: [`${folder}: holds both ${roots.map((r) => r.name).join(' and ')}: keep one root file`],
      },
    };
  }
  const [root] = roots as [PolicyFileRead];
  const file = join(folder, root.name);
  if ('problem' in root.read)
    return { refusal: { code: 'ERR_POLICY_READ', problems: [`${file}: ${root.read.problem}`] }, file };
  return { name: root.name, file, text: root.read.text };
}

function startError(refusal: Refusal, file: string): PolicyError {
  return new PolicyError(
    refusal.code,
    refusal.problems.map((message) => problemOf(message, file)),
  );
}

/**
 * The files of a judgement that are not in force, as one error (the first one's code): for the tools,
 * which judge the policy as written, every file of it. Undefined when every file is in force.
 */
export function refusedFilesError(verdicts: readonly FileVerdict[]): PolicyError | undefined {
  const refused = verdicts.filter((verdict) => !verdict.inForce);
  if (refused.length === 0) return undefined;
  return new PolicyError(
    refused[0]!.code ?? 'ERR_POLICY_INVALID',
    refused.flatMap((verdict) => (verdict.problems ?? []).map((message) => problemOf(message, verdict.file))),
  );
}

/** A refusal's problem line (`file:line:column: path: message`, as logged) as a problem of `file`. */
function problemOf(message: string, file: string): PolicyProblem {
  const own = message.startsWith(file) ? message.slice(file.length).replace(/^:\s?/, '') : message;
  return { file, line: 0, column: 0, path: '', message: own };
}

/** Compiles the root alone (its issuers, defaults, replay store): its problems refuse it. */
export function compileRoot(folder: string, name: string, text: string): RootVersion {
  const file = join(folder, name);
  const { locator, data } = parsePolicyYaml(text, file);
  checkSchema(validateRootFile, data, locator);
  const document = data as RootDocument;
  compilePolicyDocument(
    { ...policyPart(document), services: [] },
    { locator, version: policyVersion(text), source: file, folder },
  );
  return { folder, name, file, text, document, locator };
}

/** The root's keys that are a policy's own (everything but what it says of the service files). */
function policyPart(root: RootDocument): Omit<PolicyDocument, 'services' | 'routes'> {
  const policy: Record<string, unknown> = { ...root };
  for (const key of ROOT_FILE_KEYS) delete policy[key];
  return policy as unknown as Omit<PolicyDocument, 'services' | 'routes'>;
}

/** How the root admits a file: by its name, by a pattern, or not at all. */
export function admission(root: RootDocument, name: string): 'name' | 'pattern' | undefined {
  if (root.service_files.includes(name)) return 'name';
  return root.service_files.some((entry) => entry.includes('*') && globMatches(entry, name))
    ? 'pattern'
    : undefined;
}

function globMatches(pattern: string, name: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${source}$`).test(name);
}

/**
 * Compiles a service file with the root: alone, as if the policy held its services only. Its findings are
 * its own; under `reload_guard: error` those at error level that its version in force has not refuse it.
 */
export function judgeServiceFile(
  root: RootVersion,
  name: string,
  text: string,
  findingsInForce: readonly PolicyFinding[] | undefined,
  guard: 'error' | 'off',
): ServiceFileVersion | Refusal {
  const { folder } = root;
  const file = join(folder, name);
  let document: ServiceFileDocument;
  let fileLocator: Locator;
  let policy: CompiledPolicy;
  const assembled = (doc: ServiceFileDocument) => ({ ...policyPart(root.document), services: doc.services });
  try {
    const { locator, data } = parsePolicyYaml(text, file);
    fileLocator = locator;
    const misplaced = rootOnlyKeyProblems(data, locator, root.name);
    if (misplaced.length > 0) throw new PolicyError('ERR_POLICY_INVALID', misplaced);
    checkSchema(validateServiceFile, data, locator);
    document = data as ServiceFileDocument;
    const rules = serviceRuleProblems(root.document, document, locator, root.name);
    if (rules.length > 0) throw new PolicyError('ERR_POLICY_SERVICE_RULES', rules);
    policy = compilePolicyDocument(assembled(document), {
      locator: twoFileLocator(root.locator, locator),
      version: policyVersion(text),
      source: file,
      folder,
    });
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return { code: error.code, problems: error.problems.map(formatPolicyProblem) };
  }
  const findings = policyFindings(policy, {
    locator: twoFileLocator(root.locator, fileLocator),
    data: assembled(document),
  }).filter((finding) => finding.file === file);
  const refusal = guardRefusal(guard, findingsInForce ?? [], findings, file);
  if (refusal !== undefined) return { code: 'ERR_POLICY_FINDINGS', problems: refusal.problems };
  return {
    name,
    file,
    text,
    owner: document.owner,
    document,
    locator: fileLocator,
    findings,
    claims: serviceFileClaims(file, document, fileLocator),
  };
}

/** A service file's paths are its services'; every other path is the root's. */
function twoFileLocator(rootLocator: Locator, fileLocator: Locator): AssembledLocator {
  return new AssembledLocator((path) =>
    path[0] === 'services' ? { locator: fileLocator, path } : { locator: rootLocator, path },
  );
}

function rootOnlyKeyProblems(data: unknown, locator: Locator, rootName: string): PolicyProblem[] {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return [];
  return Object.keys(data)
    .filter((key) => ROOT_ONLY_KEYS.has(key))
    .map((key) =>
      locator.at(
        [key],
        key === 'routes'
          ? `a service file lists its routes under its services (services[].routes)`
          : `"${key}" is the root file's (${rootName}), for every service: a service file holds only version, owner and services`,
      ),
    );
}

/** What the root's `service_rules` refuse in a service file ("weakens a route past what the root allows"). */
function serviceRuleProblems(
  root: RootDocument,
  document: ServiceFileDocument,
  locator: Locator,
  rootName: string,
): PolicyProblem[] {
  const rules = root.service_rules ?? {};
  const problems: PolicyProblem[] = [];
  const refused = (path: YamlPath, what: string, rule: string) =>
    problems.push(
      locator.at(path, `${what}: ${rootName} refuses it to service files (service_rules.${rule}: refused)`),
    );
  document.services.forEach((service, s) => {
    if (rules.report_only === 'refused' && service.mode === 'report-only')
      refused(['services', s, 'mode'], `service "${service.name}" is report-only`, 'report_only');
    service.routes.forEach((route, r) => {
      const at = ['services', s, 'routes', r];
      if (rules.public_routes === 'refused' && route.public === true)
        refused([...at, 'public'], `route ${route.path} is public`, 'public_routes');
      if (rules.report_only === 'refused' && route.mode === 'report-only')
        refused([...at, 'mode'], `route ${route.path} is report-only`, 'report_only');
      if (rules.accept_risks === 'refused' && route.accept_risks !== undefined)
        refused([...at, 'accept_risks'], `route ${route.path} accepts risks`, 'accept_risks');
    });
  });
  return problems;
}

/** A service file's chosen version and how it got there, while a judgement is worked out. */
interface Candidate {
  readonly name: string;
  readonly file: string;
  /** The version on disk as judged (the version in force itself when unchanged), or why it is refused. */
  readonly onDisk: ServiceFileVersion | Refusal;
  /** The version that will be in force, if any. */
  chosen: ServiceFileVersion | undefined;
  refusal: Refusal | undefined;
  /** The version in force before, re-judged against the root if the root changed. */
  readonly lastGood: ServiceFileVersion | Refusal | undefined;
  /** For a version on disk that was refused: its owner and services as far as its text can be read. */
  readonly written: WrittenServices | undefined;
}

/** What a refused service file says of its owner and services, read best effort (it did not compile). */
interface WrittenServices {
  readonly owner: string | undefined;
  readonly services: readonly { readonly name: string; readonly hosts: readonly string[] }[];
}

function judgeFiles(
  listing: PolicyDirectoryListing,
  previous: DirectoryInForce | undefined,
  root: RootVersion,
  rootChanged: boolean,
  rootRefusal: Refusal | undefined,
  refusedRootFile: string | undefined,
  startGuard?: 'off',
): DirectoryJudgement | { readonly refusal: Refusal } {
  const folder = listing.folder;
  const files = 'files' in listing ? listing.files : [];
  const guard = previous?.policy.reloadGuard ?? startGuard ?? root.document.reload_guard ?? 'error';
  const verdicts: FileVerdict[] = [];
  const candidates: Candidate[] = [];
  const inForceFiles = previous?.files ?? new Map<string, ServiceFileVersion>();
  const rejudge = (version: ServiceFileVersion): ServiceFileVersion | Refusal =>
    rootChanged ? judgeServiceFile(root, version.name, version.text, version.findings, 'off') : version;

  const present = new Set<string>();
  for (const { name, read } of files) {
    if (ROOT_FILE_NAMES.includes(name)) continue;
    present.add(name);
    const file = join(folder, name);
    const inForce = inForceFiles.get(name);
    const admitted = admission(root.document, name);
    if (admitted === undefined) {
      verdicts.push({
        name,
        file,
        role: 'service',
        // Whose file it says it is, for `authz owners` and the log: it is not judged until admitted.
        owner: 'text' in read ? writtenServices(read.text)?.owner : undefined,
        outcome: 'not_admitted',
        inForce: false,
        serving: 'none',
        code: 'ERR_POLICY_FILE_NOT_ADMITTED',
        problems: [
          `${file}: not admitted by ${root.name}'s service_files: it serves nothing until the root lists it`,
        ],
        services: [],
      });
      continue;
    }
    const lastGood = inForce === undefined ? undefined : rejudge(inForce);
    let onDisk: Candidate['onDisk'];
    if ('problem' in read) onDisk = { code: 'ERR_POLICY_READ', problems: [`${file}: ${read.problem}`] };
    else if (inForce !== undefined && read.text === inForce.text && lastGood !== undefined) onDisk = lastGood;
    else onDisk = judgeServiceFile(root, name, read.text, inForce?.findings, guard);
    const written = 'text' in read && !isVersion(onDisk) ? writtenServices(read.text) : undefined;
    candidates.push(candidateOf(name, file, onDisk, lastGood, written));
  }
  // Files in force that are gone: removed if the root admits them by a pattern only (or no longer at all).
  const removed: FileVerdict[] = [];
  for (const [name, inForce] of inForceFiles) {
    if (present.has(name)) continue;
    if (admission(root.document, name) === 'name') {
      const lastGood = rejudge(inForce);
      candidates.push(
        candidateOf(
          name,
          inForce.file,
          {
            code: 'ERR_POLICY_FILE_MISSING',
            problems: [
              `${inForce.file}: is gone, but ${root.name} lists it in service_files: removing a service file takes the root's say-so (remove it from service_files); its last good version stays in force`,
            ],
          },
          lastGood,
          undefined,
        ),
      );
    } else {
      removed.push({
        name,
        file: inForce.file,
        role: 'service',
        owner: inForce.owner,
        outcome: 'removed',
        inForce: true,
        serving: 'none',
        services: [],
      });
    }
  }
  candidates.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // A root change that a file's version in force cannot live with is the root's to fix.
  const broken = candidates.filter(
    (c) => c.lastGood !== undefined && !isVersion(c.lastGood) && c.chosen === undefined,
  );
  if (rootChanged && previous !== undefined && broken.length > 0) {
    return rootRefusalOf(
      root,
      broken.map((c) => `${c.file}: ${(c.lastGood as Refusal).problems.join('; ')}`),
    );
  }
  const conflictProblem = resolveConflicts(
    candidates,
    inForceFiles,
    root,
    rootChanged && previous !== undefined,
  );
  if (conflictProblem !== undefined) {
    return rootRefusalOf(root, [conflictProblem]);
  }

  const chosen = candidates.flatMap((c) => (c.chosen === undefined ? [] : [c.chosen]));
  const unavailable = unavailableServices(candidates);
  const policy = mergedPolicy(folder, root, chosen, unavailable);
  const rootFindings = policyFindings(policy, mergedSource(root, chosen)).filter((f) => f.file === root.file);
  if (rootChanged && previous !== undefined) {
    const refusal = guardRefusal(
      previous.policy.reloadGuard,
      rootFindingsOf(previous),
      rootFindings,
      root.file,
    );
    if (refusal !== undefined) return rootRefusalOf(root, refusal.problems, 'ERR_POLICY_FINDINGS');
  }
  const inForce: DirectoryInForce = {
    folder,
    root,
    files: new Map(chosen.map((version) => [version.name, version])),
    policy,
    findings: [...rootFindings, ...chosen.flatMap((version) => version.findings)],
  };

  const rootFile = refusedRootFile ?? root.file;
  verdicts.unshift({
    name: rootFile.slice(folder.length + 1) || root.name,
    file: rootFile,
    role: 'root',
    owner: root.document.owner,
    outcome: rootRefusal !== undefined ? 'refused' : rootChanged ? 'accepted' : 'unchanged',
    inForce: rootRefusal === undefined,
    serving: rootRefusal !== undefined ? 'last_good' : 'current',
    ...(rootRefusal === undefined ? {} : { code: rootRefusal.code, problems: rootRefusal.problems }),
    services: [],
  });
  for (const candidate of candidates)
    verdicts.push(candidateVerdict(candidate, inForceFiles.get(candidate.name)));
  verdicts.push(...removed);
  const [first, ...rest] = verdicts;
  rest.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { inForce, verdicts: first === undefined ? rest : [first, ...rest] };
}

function candidateOf(
  name: string,
  file: string,
  onDisk: Candidate['onDisk'],
  lastGood: ServiceFileVersion | Refusal | undefined,
  written: WrittenServices | undefined,
): Candidate {
  if (isVersion(onDisk)) {
    return { name, file, onDisk, chosen: onDisk, refusal: undefined, lastGood, written };
  }
  const refusal = onDisk;
  return {
    name,
    file,
    onDisk,
    chosen: lastGood !== undefined && isVersion(lastGood) ? lastGood : undefined,
    refusal,
    lastGood,
    written,
  };
}

function isVersion(value: ServiceFileVersion | Refusal): value is ServiceFileVersion {
  return 'document' in value;
}

/**
 * Settles what two files both claim: the file that already holds the contested thing in force keeps it,
 * the other is refused and falls back to its last good version (or to nothing); with neither holding it
 * (start-up, or both new), the file whose name sorts first keeps it. Repeated until no conflict is left.
 * Returns a problem when two files at their versions in force conflict: only a root change can do that.
 */
function resolveConflicts(
  candidates: Candidate[],
  inForce: ReadonlyMap<string, ServiceFileVersion>,
  root: RootVersion,
  rootChanged: boolean,
): string | undefined {
  const allowed = new Set(root.document.overlapping_wildcards?.map((host) => host.toLowerCase()) ?? []);
  const holds = (candidate: Candidate, conflict: ClaimConflict, side: 'a' | 'b') => {
    const held = inForce.get(candidate.name);
    const claim = conflict[side];
    return held?.claims.claims.some((c) => c.kind === claim.kind && c.value === claim.value) ?? false;
  };
  for (let round = 0; round <= candidates.length * 2; round += 1) {
    let changed = false;
    for (const [i, a] of candidates.entries()) {
      for (const b of candidates.slice(i + 1)) {
        if (a.chosen === undefined || b.chosen === undefined) continue;
        const conflicts = claimConflicts(a.chosen.claims, b.chosen.claims, allowed);
        const [conflict] = conflicts;
        if (conflict === undefined) continue;
        const aInForce = a.chosen === inForce.get(a.name) || a.chosen.text === inForce.get(a.name)?.text;
        const bInForce = b.chosen === inForce.get(b.name) || b.chosen.text === inForce.get(b.name)?.text;
        if (aInForce && bInForce && rootChanged) {
          return `${a.file}:${conflict.a.line} (${describeClaim(conflict.a)}) and ${b.file}:${conflict.b.line} (${describeClaim(conflict.b)}) would conflict`;
        }
        // The loser: the side not in force; else the side that did not hold the thing; else the later name.
        let loserIsA: boolean;
        if (aInForce !== bInForce) loserIsA = !aInForce;
        else {
          const aHolds = holds(a, conflict, 'a');
          const bHolds = holds(b, conflict, 'b');
          loserIsA = aHolds === bHolds ? false : !aHolds;
        }
        const [loser, winner] = loserIsA ? [a, b] : [b, a];
        const loserLocator = loser.chosen?.locator;
        const problems = conflicts.map((c) => {
          const [mine, theirs] = loserIsA ? [c.a, c.b] : [c.b, c.a];
          const message =
            `${describeClaim(mine)} is held by ${winner.file}:${theirs.line} (owner ${winner.chosen?.owner ?? 'unknown'}, ${displayYamlPath(theirs.path)})` +
            (mine.value !== theirs.value
              ? `: a wildcard over another file's host needs ${root.name}'s overlapping_wildcards`
              : '');
          return loserLocator === undefined
            ? `${loser.file}:${mine.line}: ${message}`
            : formatPolicyProblem(loserLocator.at(mine.path, message));
        });
        loser.refusal = { code: 'ERR_POLICY_CONFLICT', problems };
        const fallback = loser.lastGood;
        loser.chosen =
          fallback !== undefined && isVersion(fallback) && fallback !== loser.chosen ? fallback : undefined;
        changed = true;
      }
    }
    if (!changed) return undefined;
  }
  return undefined;
}

function rootRefusalOf(
  root: RootVersion,
  problems: readonly string[],
  code?: PolicyErrorCode,
): {
  readonly refusal: Refusal;
} {
  return {
    refusal: {
      code: code ?? 'ERR_POLICY_ROOT_BREAKS_FILES',
      problems: problems.map((p) =>
        code === undefined ? `${root.file}: this change would refuse a service file in force: ${p}` : p,
      ),
    },
  };
}

function candidateVerdict(candidate: Candidate, inForce: ServiceFileVersion | undefined): FileVerdict {
  const { name, file, chosen, refusal, onDisk } = candidate;
  const services = chosen?.document.services.map((s) => s.name) ?? [];
  const owner = isVersion(onDisk) ? onDisk.owner : (chosen?.owner ?? inForce?.owner);
  if (refusal !== undefined) {
    return {
      name,
      file,
      role: 'service',
      owner: owner ?? candidate.written?.owner,
      outcome: 'refused',
      inForce: false,
      serving: chosen === undefined ? 'none' : 'last_good',
      code: refusal.code,
      problems: refusal.problems,
      services,
    };
  }
  const unchanged = inForce !== undefined && chosen !== undefined && chosen.text === inForce.text;
  return {
    name,
    file,
    role: 'service',
    owner,
    outcome: unchanged ? 'unchanged' : 'accepted',
    inForce: true,
    serving: 'current',
    services,
  };
}

function writtenServices(text: string): WrittenServices | undefined {
  let data: unknown;
  try {
    data = parse(text, { maxAliasCount: 100 });
  } catch {
    // Not YAML as a whole: its owner line alone still says whose file it is (its hosts are not guessed).
    const owner = /^owner:[ \t]*(["']?)([^\s"'#][^\n"'#]{0,99}?)\1[ \t]*(?:#.*)?$/m.exec(text)?.[2];
    return owner === undefined ? undefined : { owner, services: [] };
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const { owner, services } = data as { owner?: unknown; services?: unknown };
  const named = (Array.isArray(services) ? services : []).flatMap((service: unknown) => {
    const { name, hosts } = (service ?? {}) as { name?: unknown; hosts?: unknown };
    return typeof name === 'string' && name.length > 0 && name.length <= 100
      ? [{ name, hosts: hostsWritten(hosts) }]
      : [];
  });
  return {
    owner: typeof owner === 'string' && owner.length > 0 && owner.length <= 100 ? owner : undefined,
    services: named.slice(0, 100),
  };
}

/**
 * The hosts and service names of refused service files with nothing in force, read as well as their text
 * allows: their requests are answered 503 until a good version is saved, rather than 403 as if no team
 * served them. A host another file serves is that file's.
 */
function unavailableServices(candidates: readonly Candidate[]): UnavailableServices | undefined {
  const names = new Set<string>();
  const hosts = new Set<string>();
  for (const candidate of candidates) {
    if (candidate.chosen !== undefined || candidate.refusal === undefined) continue;
    for (const service of candidate.written?.services ?? []) {
      names.add(service.name);
      for (const host of service.hosts) hosts.add(host);
    }
  }
  if (names.size === 0 && hosts.size === 0) return undefined;
  return Object.freeze({
    hasName: (name: string) => names.has(name),
    hasHost: (host: string | undefined) => {
      if (host === undefined) return false;
      if (hosts.has(host)) return true;
      const dot = host.indexOf('.');
      return dot > 0 && hosts.has(`*${host.slice(dot)}`);
    },
  });
}

/** The files in force merged into one policy: the root's settings, every file's services in name order. */
function mergedPolicy(
  folder: string,
  root: RootVersion,
  versions: readonly ServiceFileVersion[],
  unavailable: UnavailableServices | undefined,
): CompiledPolicy {
  const source = mergedSource(root, versions);
  const compiled = compilePolicyDocument(source.data, {
    locator: source.locator,
    version: directoryVersion([
      { name: root.name, read: { text: root.text } },
      ...versions.map((v) => ({ name: v.name, read: { text: v.text } })),
    ]),
    source: folder,
    folder,
  });
  const places = servicePlaces(versions);
  const services = compiled.services.map((service, k): CompiledService => {
    const place = places[k] as ServicePlace;
    return Object.freeze({
      ...service,
      routesPath: Object.freeze(['services', place.index, 'routes']),
      origin: Object.freeze({ file: place.version.file, owner: place.version.owner }),
    });
  });
  return Object.freeze({
    ...compiled,
    services: Object.freeze(services),
    serviceSelector: createServiceSelector(services),
    ...(unavailable === undefined ? {} : { unavailable }),
  });
}

interface ServicePlace {
  readonly version: ServiceFileVersion;
  /** Its index in its file's `services`. */
  readonly index: number;
}

function servicePlaces(versions: readonly ServiceFileVersion[]): ServicePlace[] {
  return versions.flatMap((version) => version.document.services.map((_, index) => ({ version, index })));
}

/** The merged document, and where each of its paths is written. */
function mergedSource(
  root: RootVersion,
  versions: readonly ServiceFileVersion[],
): { readonly locator: AssembledLocator; readonly data: PolicyDocument } {
  const places = servicePlaces(versions);
  const data: PolicyDocument = {
    ...policyPart(root.document),
    services: places.map((place) => place.version.document.services[place.index]!),
  };
  const locator = new AssembledLocator((path) => {
    if (path[0] === 'services' && typeof path[1] === 'number') {
      const place = places[path[1]];
      if (place !== undefined)
        return { locator: place.version.locator, path: ['services', place.index, ...path.slice(2)] };
    }
    return { locator: root.locator, path };
  });
  return { locator, data };
}

function rootFindingsOf(inForce: DirectoryInForce): readonly PolicyFinding[] {
  return inForce.findings.filter((finding) => finding.file === inForce.root.file);
}

/** Hosts of a service file's text that are host names, best effort, for `unavailableServices`. */
function hostsWritten(hosts: unknown): string[] {
  if (!Array.isArray(hosts)) return [];
  return hosts
    .filter((host): host is string => typeof host === 'string' && hostPatternProblem(host) === undefined)
    .map((host) => host.toLowerCase());
}
