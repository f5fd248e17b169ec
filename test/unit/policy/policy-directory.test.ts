import { describe, expect, it } from 'vitest';
import type { RequestFacts } from '../../../src/authz/request-facts.js';
import { chooseService } from '../../../src/authz/service-selection.js';
import { PolicyError } from '../../../src/policy/policy-error.js';
import {
  directoryVersion,
  isPolicyFileName,
  judgePolicyDirectory,
  type DirectoryInForce,
  type DirectoryJudgement,
  type FileVerdict,
} from '../../../src/policy/policy-directory.js';
import { listingOf, rootText, serviceFileText } from '../../kit/policy-directory-files.js';

const DIR = '/policy.d';
const BANK = serviceFileText('team-bank', { name: 'bank', hosts: ['bank.example'] });
const CARDS = serviceFileText('team-cards', { name: 'cards', hosts: ['cards.example'] });

function judge(files: Record<string, string>, previous?: DirectoryInForce): DirectoryJudgement {
  return judgePolicyDirectory(listingOf(DIR, files), previous);
}

function verdict(judgement: DirectoryJudgement, name: string): FileVerdict {
  const found = judgement.verdicts.find((v) => v.name === name);
  if (found === undefined) throw new Error(`no verdict for ${name}`);
  return found;
}

const outcomes = (judgement: DirectoryJudgement) =>
  judgement.verdicts.map((v) => `${v.name} ${v.outcome} ${v.serving}`);

function facts(host: string | undefined, serviceName?: string): RequestFacts<unknown> {
  return { host, serviceName } as unknown as RequestFacts<unknown>;
}

const start = judge({ '_gateway.yaml': rootText(), 'bank.yaml': BANK, 'cards.yaml': CARDS });

describe('judgePolicyDirectory: a root and one service file per team', () => {
  it('puts every file in force and merges their services, each with its file, owner and lines', () => {
    expect(outcomes(start)).toEqual([
      '_gateway.yaml accepted current',
      'bank.yaml accepted current',
      'cards.yaml accepted current',
    ]);
    const { policy } = start.inForce;
    expect(policy.source).toBe(DIR);
    expect(policy.services.map((s) => [s.name, s.origin, s.line, s.routesPath])).toEqual([
      ['bank', { file: '/policy.d/bank.yaml', owner: 'team-bank' }, 3, ['services', 0, 'routes']],
      ['cards', { file: '/policy.d/cards.yaml', owner: 'team-cards' }, 3, ['services', 0, 'routes']],
    ]);
    expect(policy.services[1]!.routes[0]!.line).toBe(7);
    expect(policy.serviceSelector.forHost('cards.example')?.name).toBe('cards');
    expect(policy.unavailable).toBeUndefined();
    // The listing of a directory whose every file is in force has the version in force.
    expect(
      directoryVersion(
        listingOf(DIR, { '_gateway.yaml': rootText(), 'bank.yaml': BANK, 'cards.yaml': CARDS }).files,
      ),
    ).toBe(policy.version);
  });

  it('locates findings in their own file: the root, or the service file', () => {
    const judgement = judge({
      '_gateway.yaml': rootText({ extra: ['known_scopes: [view:cards, view:unused]'] }),
      'bank.yaml': BANK,
      'cards.yaml': CARDS,
    });
    const findings = judgement.inForce.findings.map((f) => [f.file, f.line, f.path, f.code]);
    expect(findings).toContainEqual(['/policy.d/_gateway.yaml', 4, 'known_scopes[1]', 'scope_unused']);
    expect(findings).toContainEqual([
      '/policy.d/bank.yaml',
      7,
      'services[0].routes[0].scopes[0]',
      'scope_unknown',
    ]);
  });

  it('refuses a service file that sets what is the root’s, naming the root', () => {
    const judgement = judge({
      '_gateway.yaml': rootText(),
      'bank.yaml': `known_scopes: [a]\nreload_guard: off\n${BANK}`,
      'cards.yaml': CARDS,
    });
    expect(verdict(judgement, 'bank.yaml')).toMatchObject({ outcome: 'refused', code: 'ERR_POLICY_INVALID' });
    expect(verdict(judgement, 'bank.yaml').problems).toEqual([
      expect.stringContaining(
        '/policy.d/bank.yaml:1:1: known_scopes: "known_scopes" is the root file\'s (_gateway.yaml)',
      ),
      expect.stringContaining('/policy.d/bank.yaml:2:1: reload_guard:'),
    ]);
    expect(verdict(judgement, 'cards.yaml').outcome).toBe('accepted');
  });

  it('needs owner in a service file, and refuses an issuer the root does not list', () => {
    const judgement = judge({
      '_gateway.yaml': rootText(),
      'bank.yaml': BANK.replace('owner: team-bank\n', ''),
      'cards.yaml': serviceFileText('team-cards', {
        name: 'cards',
        extra: ['issuers: [{ issuer: https://other.example/ }]'],
      }),
    });
    expect(verdict(judgement, 'bank.yaml').problems).toEqual([
      expect.stringContaining('missing required key "owner"'),
    ]);
    expect(verdict(judgement, 'cards.yaml').problems).toEqual([
      expect.stringContaining('"https://other.example/" is not one of the top-level issuers'),
    ]);
    expect(verdict(judgement, 'cards.yaml').owner).toBe('team-cards');
  });

  it('refuses a YAML file the root does not admit, and ignores dotfiles and policy test files', () => {
    expect(isPolicyFileName('bank.yaml')).toBe(true);
    expect(isPolicyFileName('bank.yml')).toBe(true);
    expect(isPolicyFileName('..data')).toBe(false);
    expect(isPolicyFileName('.bank.yaml')).toBe(false);
    expect(isPolicyFileName('bank.test.yaml')).toBe(false);
    expect(isPolicyFileName('README.md')).toBe(false);
    const judgement = judge({
      '_gateway.yaml': rootText(),
      'bank.yaml': BANK,
      'cards.yaml': CARDS,
      'extra.yaml': CARDS,
    });
    expect(verdict(judgement, 'extra.yaml')).toMatchObject({
      outcome: 'not_admitted',
      code: 'ERR_POLICY_FILE_NOT_ADMITTED',
      serving: 'none',
    });
    expect(judgement.inForce.policy.services.map((s) => s.name)).toEqual(['bank', 'cards']);
  });

  it('admits files by pattern', () => {
    const judgement = judge({
      '_gateway.yaml': rootText({ serviceFiles: ['team-*.yaml'] }),
      'team-bank.yaml': BANK,
      'team-cards.yaml': CARDS,
      'other.yaml': CARDS,
    });
    expect(outcomes(judgement)).toEqual([
      '_gateway.yaml accepted current',
      'other.yaml not_admitted none',
      'team-bank.yaml accepted current',
      'team-cards.yaml accepted current',
    ]);
  });

  it('refuses a directory with no root, or two, at start', () => {
    expect(() => judge({ 'bank.yaml': BANK })).toThrow(PolicyError);
    expect(() => judge({ 'bank.yaml': BANK })).toThrow(/needs a root file, _gateway.yaml/);
    expect(() => judge({ '_gateway.yaml': rootText(), '_gateway.yml': rootText() })).toThrow(
      /keep one root file/,
    );
    expect(() => judge({ '_gateway.yaml': 'version: 1\nissuers: []\n' })).toThrow(/service_files/);
  });
});

describe('judgePolicyDirectory: merging is explicit', () => {
  it('gives an exact host to one file: at start the file whose name sorts first, the other refused with both names and lines', () => {
    const judgement = judge({
      '_gateway.yaml': rootText(),
      'bank.yaml': BANK,
      'cards.yaml': serviceFileText('team-cards', {
        name: 'cards',
        hosts: ['cards.example', 'Bank.example'],
      }),
    });
    expect(verdict(judgement, 'cards.yaml')).toMatchObject({
      outcome: 'refused',
      code: 'ERR_POLICY_CONFLICT',
    });
    expect(verdict(judgement, 'cards.yaml').problems).toEqual([
      '/policy.d/cards.yaml:4:30: services[0].hosts[1]: host "bank.example" is held by /policy.d/bank.yaml:4 (owner team-bank, services[0].hosts[0])',
    ]);
    expect(judgement.inForce.policy.serviceSelector.forHost('bank.example')?.name).toBe('bank');
  });

  it('keeps a host with the file that holds it in force, whatever the names: the file that steals it is refused', () => {
    const aBank = judge({
      '_gateway.yaml': rootText({ serviceFiles: ['a.yaml', 'z.yaml'] }),
      'a.yaml': CARDS,
      'z.yaml': BANK,
    });
    const stolen = judge(
      {
        '_gateway.yaml': rootText({ serviceFiles: ['a.yaml', 'z.yaml'] }),
        'a.yaml': serviceFileText('team-cards', { name: 'cards', hosts: ['cards.example', 'bank.example'] }),
        'z.yaml': BANK,
      },
      aBank.inForce,
    );
    expect(verdict(stolen, 'a.yaml')).toMatchObject({
      outcome: 'refused',
      serving: 'last_good',
      code: 'ERR_POLICY_CONFLICT',
    });
    expect(verdict(stolen, 'a.yaml').problems?.[0]).toContain(
      'held by /policy.d/z.yaml:4 (owner team-bank, services[0].hosts[0])',
    );
    expect(verdict(stolen, 'z.yaml').outcome).toBe('unchanged');
    expect(stolen.inForce.policy.serviceSelector.forHost('bank.example')?.name).toBe('bank');
    expect(stolen.inForce.policy.serviceSelector.forHost('cards.example')?.name).toBe('cards');
  });

  it('needs the root’s say-so for a wildcard over another file’s exact host', () => {
    const files = {
      'bank.yaml': serviceFileText('team-bank', { name: 'bank', hosts: ['*.bank.example'] }),
      'cards.yaml': serviceFileText('team-cards', { name: 'cards', hosts: ['cards.bank.example'] }),
    };
    const refused = judge({ '_gateway.yaml': rootText(), ...files });
    expect(verdict(refused, 'cards.yaml').problems).toEqual([
      expect.stringContaining(
        "is held by /policy.d/bank.yaml:4 (owner team-bank, services[0].hosts[0]): a wildcard over another file's host needs _gateway.yaml's overlapping_wildcards",
      ),
    ]);
    const allowed = judge({
      '_gateway.yaml': rootText({ extra: ['overlapping_wildcards: ["*.bank.example"]'] }),
      ...files,
    });
    expect(outcomes(allowed)).toEqual([
      '_gateway.yaml accepted current',
      'bank.yaml accepted current',
      'cards.yaml accepted current',
    ]);
    expect(allowed.inForce.policy.serviceSelector.forHost('cards.bank.example')?.name).toBe('cards');
    expect(allowed.inForce.policy.serviceSelector.forHost('web.bank.example')?.name).toBe('bank');
  });

  it('refuses a service name or a claim header another file uses', () => {
    const judgement = judge({
      '_gateway.yaml': rootText(),
      'bank.yaml': serviceFileText('team-bank', { name: 'bank', claimHeaders: { sub: 'x-user' } }),
      'cards.yaml': serviceFileText(
        'team-cards',
        { name: 'bank', hosts: ['other.example'] },
        { name: 'cards', claimHeaders: { email: 'x-user' } },
      ),
    });
    expect(verdict(judgement, 'cards.yaml').problems).toEqual([
      expect.stringMatching(
        /cards\.yaml:3:5: services\[0\]\.name: service "bank" is held by \/policy\.d\/bank\.yaml:3 \(owner team-bank, services\[0\]\.name\)/,
      ),
      expect.stringMatching(
        /cards\.yaml:\d+:\d+: services\[1\]\.claim_headers\.email: claim header "x-user" is held by \/policy\.d\/bank\.yaml:\d+/,
      ),
    ]);
  });

  it('refuses what the root’s service_rules refuse: public routes, report-only, accepted risks', () => {
    const judgement = judge({
      '_gateway.yaml': rootText({
        extra: ['service_rules: { public_routes: refused, report_only: refused, accept_risks: refused }'],
      }),
      'bank.yaml': serviceFileText('team-bank', {
        name: 'bank',
        extra: ['mode: report-only'],
        routes: ['{ methods: [GET], path: /healthz, public: true }'],
      }),
      'cards.yaml': serviceFileText('team-cards', {
        name: 'cards',
        routes: [
          '{ methods: [GET], path: /c, scopes: [a], accept_risks: [{ code: public_any_method, reason: a reason of ours }] }',
        ],
      }),
    });
    expect(verdict(judgement, 'bank.yaml')).toMatchObject({
      outcome: 'refused',
      code: 'ERR_POLICY_SERVICE_RULES',
    });
    expect(verdict(judgement, 'bank.yaml').problems).toEqual([
      expect.stringContaining(
        'services[0].mode: service "bank" is report-only: _gateway.yaml refuses it to service files (service_rules.report_only: refused)',
      ),
      expect.stringContaining('services[0].routes[0].public: route /healthz is public'),
    ]);
    expect(verdict(judgement, 'cards.yaml').problems).toEqual([
      expect.stringContaining(
        'route /c accepts risks: _gateway.yaml refuses it to service files (service_rules.accept_risks: refused)',
      ),
    ]);
  });
});

describe('judgePolicyDirectory: isolation on reload', () => {
  const root = rootText();

  it('applies one team’s edit while another team’s broken save is refused, its last good version kept', () => {
    const next = judge(
      {
        '_gateway.yaml': root,
        'bank.yaml': BANK.replace('routes:', 'routes: [oops'),
        'cards.yaml': serviceFileText('team-cards', {
          name: 'cards',
          routes: ['{ methods: [GET, POST], path: /cards, scopes: [view:cards] }'],
        }),
      },
      start.inForce,
    );
    expect(outcomes(next)).toEqual([
      '_gateway.yaml unchanged current',
      'bank.yaml refused last_good',
      'cards.yaml accepted current',
    ]);
    expect(verdict(next, 'bank.yaml')).toMatchObject({
      code: 'ERR_POLICY_SYNTAX',
      owner: 'team-bank',
      services: ['bank'],
    });
    const { policy } = next.inForce;
    expect(policy.services.map((s) => s.name)).toEqual(['bank', 'cards']);
    expect([...policy.services[1]!.routes[0]!.methods!]).toEqual(['GET', 'POST']);
    const bank = (p: typeof policy) => p.services[0]!.routes.map((route) => route.name);
    expect(bank(policy)).toEqual(bank(start.inForce.policy));
    expect(next.inForce.files.get('bank.yaml')?.text).toBe(BANK);
  });

  it('refuses a service file that brings a new error-level finding (reload_guard: error), and takes it with reload_guard: off', () => {
    const catchAll = serviceFileText('team-bank', { name: 'bank', routes: ['{ path: /**, public: true }'] });
    const refused = judge(
      { '_gateway.yaml': root, 'bank.yaml': catchAll, 'cards.yaml': CARDS },
      start.inForce,
    );
    expect(verdict(refused, 'bank.yaml')).toMatchObject({ outcome: 'refused', code: 'ERR_POLICY_FINDINGS' });
    expect(verdict(refused, 'bank.yaml').problems?.[0]).toMatch(
      /bank\.yaml:\d+:\d+: services\[0\]\.routes\[0\]: .*\(public_catch_all; reload_guard: error\)/,
    );

    const off = rootText({ extra: ['reload_guard: off'] });
    const lenient = judge({ '_gateway.yaml': off, 'bank.yaml': BANK, 'cards.yaml': CARDS });
    const taken = judge(
      { '_gateway.yaml': off, 'bank.yaml': catchAll, 'cards.yaml': CARDS },
      lenient.inForce,
    );
    expect(verdict(taken, 'bank.yaml').outcome).toBe('accepted');
  });

  it('refuses a service file with error-level findings at start, and serves the others', () => {
    const judgement = judge({
      '_gateway.yaml': root,
      'bank.yaml': serviceFileText('team-bank', { name: 'bank', routes: ['{ path: /**, public: true }'] }),
      'cards.yaml': CARDS,
    });
    expect(outcomes(judgement)).toEqual([
      '_gateway.yaml accepted current',
      'bank.yaml refused none',
      'cards.yaml accepted current',
    ]);
    const off = judgePolicyDirectory(
      listingOf(DIR, {
        '_gateway.yaml': root,
        'bank.yaml': serviceFileText('team-bank', { name: 'bank', routes: ['{ path: /**, public: true }'] }),
        'cards.yaml': CARDS,
      }),
      undefined,
      'off',
    );
    expect(verdict(off, 'bank.yaml').outcome).toBe('accepted');
  });

  it('answers 503 for the hosts and name of a refused file with nothing in force, 403 for hosts no file claims', () => {
    const judgement = judge({
      '_gateway.yaml': root,
      'bank.yaml': BANK,
      'cards.yaml': serviceFileText('team-cards', {
        name: 'cards',
        hosts: ['cards.example', '*.cards.example', 'bank.example'],
      }).replace('realm: cards-api', 'realm: 7'),
    });
    expect(verdict(judgement, 'cards.yaml')).toMatchObject({
      outcome: 'refused',
      serving: 'none',
      owner: 'team-cards',
    });
    const { policy } = judgement.inForce;
    const code = (host: string | undefined, name?: string) => {
      const choice = chooseService(policy, facts(host, name));
      return choice.kind === 'service'
        ? choice.service.name
        : choice.authorization.decision.kind === 'deny'
          ? `${choice.authorization.decision.code} ${'status' in choice.authorization.answer ? choice.authorization.answer.status : 200}`
          : '?';
    };
    expect(code('cards.example')).toBe('service_unavailable 503');
    expect(code('eu.cards.example')).toBe('service_unavailable 503');
    expect(code(undefined, 'cards')).toBe('service_unavailable 503');
    expect(code('bank.example')).toBe('bank');
    expect(code('nobody.example')).toBe('no_service 403');
    expect(code(undefined, 'nobody')).toBe('service_unknown 403');
  });

  it('keeps the root in force when the new root is refused, and judges the service files against it', () => {
    const next = judge(
      {
        '_gateway.yaml': 'version: 1\nissuers: [',
        'bank.yaml': BANK,
        'cards.yaml': serviceFileText('team-cards', { name: 'cards', hosts: ['new.example'] }),
      },
      start.inForce,
    );
    expect(outcomes(next)).toEqual([
      '_gateway.yaml refused last_good',
      'bank.yaml unchanged current',
      'cards.yaml accepted current',
    ]);
    expect(verdict(next, '_gateway.yaml').code).toBe('ERR_POLICY_SYNTAX');
    expect(next.inForce.root).toBe(start.inForce.root);
    expect(next.inForce.policy.serviceSelector.forHost('new.example')?.name).toBe('cards');
  });

  it('refuses a root change that a service file in force could not live with', () => {
    const otherIssuer = [
      '  - issuer: https://other.example/',
      '    audiences: [https://other]',
      '    jwks_file: keys.json',
      '    algorithms: [ES256]',
      '    require_typ: at+jwt',
    ];
    const bankTrustingIt = serviceFileText('team-bank', {
      name: 'bank',
      extra: ['issuers: [{ issuer: https://other.example/ }]'],
    });
    const both = rootText({ issuers: [...rootText().split('\n').slice(4, 9), ...otherIssuer] });
    const first = judge({ '_gateway.yaml': both, 'bank.yaml': bankTrustingIt, 'cards.yaml': CARDS });
    expect(outcomes(first)).toEqual([
      '_gateway.yaml accepted current',
      'bank.yaml accepted current',
      'cards.yaml accepted current',
    ]);
    const next = judge(
      { '_gateway.yaml': root, 'bank.yaml': bankTrustingIt, 'cards.yaml': CARDS },
      first.inForce,
    );
    expect(verdict(next, '_gateway.yaml')).toMatchObject({
      outcome: 'refused',
      code: 'ERR_POLICY_ROOT_BREAKS_FILES',
    });
    expect(verdict(next, '_gateway.yaml').problems?.[0]).toContain(
      'this change would refuse a service file in force: /policy.d/bank.yaml',
    );
    expect(next.inForce.policy.issuers.has('https://other.example/')).toBe(true);
    expect(outcomes(next).slice(1)).toEqual(['bank.yaml unchanged current', 'cards.yaml unchanged current']);
  });

  it('keeps a deleted file the root names in force until the root drops it; a file admitted by a pattern goes', () => {
    const missing = judge({ '_gateway.yaml': root, 'bank.yaml': BANK }, start.inForce);
    expect(verdict(missing, 'cards.yaml')).toMatchObject({
      outcome: 'refused',
      serving: 'last_good',
      code: 'ERR_POLICY_FILE_MISSING',
      owner: 'team-cards',
    });
    expect(missing.inForce.policy.serviceSelector.forHost('cards.example')?.name).toBe('cards');
    const dropped = judge(
      { '_gateway.yaml': rootText({ serviceFiles: ['bank.yaml'] }), 'bank.yaml': BANK },
      missing.inForce,
    );
    expect(outcomes(dropped)).toEqual([
      '_gateway.yaml accepted current',
      'bank.yaml unchanged current',
      'cards.yaml removed none',
    ]);
    expect(dropped.inForce.policy.serviceSelector.forHost('cards.example')).toBeUndefined();

    const byPattern = rootText({ serviceFiles: ['bank.yaml', 'team-*.yaml'] });
    const before = judge({ '_gateway.yaml': byPattern, 'bank.yaml': BANK, 'team-cards.yaml': CARDS });
    const after = judge({ '_gateway.yaml': byPattern, 'bank.yaml': BANK }, before.inForce);
    expect(outcomes(after)).toEqual([
      '_gateway.yaml unchanged current',
      'bank.yaml unchanged current',
      'team-cards.yaml removed none',
    ]);
    expect(after.inForce.policy.services.map((s) => s.name)).toEqual(['bank']);
  });

  it('lets one file take a host another gives up in the same save', () => {
    const next = judge(
      {
        '_gateway.yaml': root,
        'bank.yaml': serviceFileText('team-bank', { name: 'bank', hosts: ['bank2.example'] }),
        'cards.yaml': serviceFileText('team-cards', {
          name: 'cards',
          hosts: ['cards.example', 'bank.example'],
        }),
      },
      start.inForce,
    );
    expect(outcomes(next)).toEqual([
      '_gateway.yaml unchanged current',
      'bank.yaml accepted current',
      'cards.yaml accepted current',
    ]);
    expect(next.inForce.policy.serviceSelector.forHost('bank.example')?.name).toBe('cards');
  });
});

describe('judgePolicyDirectory: what a refused file says of itself', () => {
  it('reads the owner of a file that is not YAML from its owner line', () => {
    const judgement = judge({
      '_gateway.yaml': rootText(),
      'bank.yaml': 'owner: "team-bank"  # the bank\nservices: [\n',
      'cards.yaml': 'owner: team-cards\nservices:\n  - name: [cards\n',
    });
    expect(verdict(judgement, 'bank.yaml')).toMatchObject({
      outcome: 'refused',
      owner: 'team-bank',
      code: 'ERR_POLICY_SYNTAX',
    });
    expect(verdict(judgement, 'cards.yaml').owner).toBe('team-cards');
    expect(judgement.inForce.policy.unavailable).toBeUndefined();
  });
});
