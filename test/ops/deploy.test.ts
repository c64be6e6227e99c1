import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, isPair, isScalar, parseAllDocuments, parseDocument, parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';

// The Kubernetes manifests in deploy/, parsed and checked for what running several replicas safely
// needs. No cluster here: this is the static part of what `kubectl apply --dry-run=server` would do.

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked as untyped YAML; the assertions are the types
type Json = Record<string, any>;

const DIR = 'deploy';
const docs: Json[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { ...(d.toJS() as Json), __file: f };
    }),
  );
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
const one = (kind: string) => {
  const found = byKind(kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
};

const deployment = one('Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const env: Array<{ name: string; value?: string; valueFrom?: Json }> = container.env;
const envValue = (name: string) => env.find((e) => e.name === name);

describe('deploy/ manifests', () => {
  it('every document is a well-formed Kubernetes object', () => {
    for (const d of docs) {
      if (d.kind === 'Kustomization') continue;
      expect(d.apiVersion, d.__file).toMatch(
        /^(v1|apps\/v1|policy\/v1|autoscaling\/v2|networking\.k8s\.io\/v1)$/,
      );
      expect(d.metadata?.name, d.__file).toBe('volc-scim-bridge');
    }
    expect(docs.map((d) => d.kind).sort()).toEqual(
      [
        'Deployment',
        'HorizontalPodAutoscaler',
        'Ingress',
        'Kustomization',
        'PodDisruptionBudget',
        'Secret',
        'Service',
      ].sort(),
    );
  });

  it('kustomization applies everything but the example Secret', () => {
    const k = one('Kustomization');
    const listed = new Set<string>(k.resources);
    for (const d of docs.filter((x) => x.kind !== 'Kustomization'))
      expect(listed.has(d.__file), d.__file).toBe(d.kind !== 'Secret');
  });

  it('Deployment: at least 2 replicas behind a matching selector, rolling without losing capacity', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const labels = deployment.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) expect(labels[k]).toBe(v);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('Deployment: secrets come from a Secret via secretKeyRef, never inline', () => {
    const secret = one('Secret');
    for (const name of [
      'DATABASE_URL',
      'SCIM_BEARER_TOKENS',
      'VOLCENGINE_ACCESS_KEY',
      'VOLCENGINE_SECRET_KEY',
    ]) {
      const e = envValue(name);
      expect(e?.value, name).toBeUndefined();
      expect(e?.valueFrom?.secretKeyRef, name).toMatchObject({ name: secret.metadata.name, key: name });
      expect(Object.keys(secret.stringData), name).toContain(name);
    }
    // Every literal value the Deployment sets is a valid bridge setting (same validation as at start).
    const literals = Object.fromEntries(
      env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    const config = loadConfig(
      {
        ...literals,
        ...Object.fromEntries(Object.entries(secret.stringData as Record<string, string>)),
      },
      () => 'unused',
    );
    expect(config.production).toBe(true);
    expect(config.databaseUrl).toMatch(/^postgresql:\/\//);
    // No secret-looking variable is set inline.
    for (const e of env)
      if (/TOKEN|SECRET|PASSWORD|DATABASE_URL/.test(e.name)) expect(e.value, e.name).toBeUndefined();
  });

  it('example Secret holds placeholders only', () => {
    const secret = one('Secret');
    for (const [k, v] of Object.entries(secret.stringData as Record<string, string>))
      expect(v, k).toMatch(/CHANGE_ME/);
  });

  it('Deployment: liveness on /healthz, readiness on /readyz, both on the served port', () => {
    const port = container.ports.find((p: Json) => p.name === 'http');
    expect(port.containerPort).toBe(Number(envValue('PORT')?.value ?? 8080));
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    // Probes described by the OpenAPI document exist there (and need no credentials).
    const spec = parseYaml(readFileSync('openapi.yaml', 'utf8')) as Json;
    expect(spec.paths['/healthz'].get.security).toEqual([]);
    expect(spec.paths['/readyz'].get.security).toEqual([]);
    // The readiness cache keeps probes cheap: at most one upstream call per cache period.
    expect(container.readinessProbe.periodSeconds * 1000).toBeLessThanOrEqual(
      Number(envValue('READINESS_CACHE_MS')?.value),
    );
  });

  it('Deployment: resources have requests and limits', () => {
    const { requests, limits } = container.resources;
    expect(requests.cpu).toBeDefined();
    expect(requests.memory).toBeDefined();
    expect(limits.memory).toBeDefined();
    expect(limits.cpu).toBeDefined();
  });

  it('Deployment: non-root, read-only root filesystem, no capabilities, no privilege escalation', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    // Same uid as the image's USER.
    const user = /^USER\s+(\d+)/m.exec(readFileSync('Dockerfile', 'utf8'))?.[1];
    expect(pod.securityContext.runAsUser).toBe(Number(user));
  });

  it('Deployment: the kubelet waits longer than the bridge drains', () => {
    const drainMs =
      Number(envValue('SHUTDOWN_DELAY_MS')?.value ?? 0) + Number(envValue('SHUTDOWN_GRACE_MS')?.value);
    expect(drainMs).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
  });

  it('Service targets the pods on the named port', () => {
    const service = one('Service');
    const labels = deployment.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(service.spec.selector)) expect(labels[k]).toBe(v);
    expect(service.spec.ports[0].targetPort).toBe('http');
  });

  it('PodDisruptionBudget keeps a replica up and selects the pods', () => {
    const pdb = one('PodDisruptionBudget');
    expect(pdb.spec.minAvailable ?? 0).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it('HorizontalPodAutoscaler scales the Deployment from at least 2 replicas on CPU', () => {
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
    // Utilization targets need CPU requests.
    expect(container.resources.requests.cpu).toBeDefined();
  });
});

describe('deploy/: the console, HTTPS and probe comments', () => {
  it('ADMIN_TOKENS comes from the Secret, optional (console off without it), with a note on reaching /admin', () => {
    const secret = one('Secret');
    const admin = envValue('ADMIN_TOKENS');
    expect(admin?.value).toBeUndefined();
    expect(admin?.valueFrom?.secretKeyRef).toEqual({
      name: secret.metadata.name,
      key: 'ADMIN_TOKENS',
      optional: true,
    });
    expect(secret.stringData.ADMIN_TOKENS).toMatch(/CHANGE_ME/);
    const text = readFileSync(join(DIR, 'deployment.yaml'), 'utf8');
    expect(text).toMatch(/kubectl port-forward svc\/volc-scim-bridge 8080:80/);
    // With the example Secret the console is on.
    const config = loadConfig(
      Object.fromEntries(Object.entries(secret.stringData as Record<string, string>)),
      () => 'unused',
    );
    expect(config.adminTokens).toEqual(['CHANGE_ME_ADMIN_TOKEN_FOR_OPERATORS']);
  });

  it('Ingress: TLS for the PUBLIC_BASE_URL host, only /scim/v2 routed, to the Service port by name', () => {
    const ingress = one('Ingress');
    const service = one('Service');
    const host = new URL(envValue('PUBLIC_BASE_URL')!.value!).host;
    expect(new URL(envValue('PUBLIC_BASE_URL')!.value!).protocol).toBe('https:');
    expect(ingress.spec.tls).toEqual([{ hosts: [host], secretName: expect.any(String) }]);
    expect(ingress.spec.rules).toHaveLength(1);
    expect(ingress.spec.rules[0].host).toBe(host);
    expect(ingress.spec.rules[0].http.paths).toEqual([
      {
        path: '/scim/v2',
        pathType: 'Prefix',
        backend: { service: { name: service.metadata.name, port: { name: service.spec.ports[0].name } } },
      },
    ]);
    // The proxy waits longer than the bridge's own deadline, so the bridge's answer (504) arrives.
    const readTimeout = Number(
      ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'],
    );
    expect(readTimeout * 1000).toBeGreaterThan(loadConfig({}, () => 'unused').requestDeadlineMs);
    // Behind the Ingress the client address comes from X-Forwarded-For: TRUST_PROXY must be set.
    expect(loadConfig({ TRUST_PROXY: envValue('TRUST_PROXY')!.value! }, () => 'unused').trustProxy).not.toBe(
      false,
    );
  });

  it('every probe carries a comment saying what it checks', () => {
    const doc = parseDocument(readFileSync(join(DIR, 'deployment.yaml'), 'utf8'));
    const containerNode = doc.getIn(['spec', 'template', 'spec', 'containers', 0], true);
    expect(isMap(containerNode)).toBe(true);
    const comments: Record<string, string> = {};
    if (isMap(containerNode))
      for (const item of containerNode.items)
        if (isPair(item) && isScalar(item.key))
          comments[String(item.key.value)] = item.key.commentBefore ?? '';
    expect(comments.startupProbe).toMatch(/Startup: \/healthz .*listens/s);
    expect(comments.livenessProbe).toMatch(
      /Liveness: \/healthz .*never touches the store or\s+CloudIdentity/s,
    );
    expect(comments.readinessProbe).toMatch(
      /Readiness: \/readyz checks that the store answers a ping and CloudIdentity/s,
    );
  });
});

describe('deploy/volc-scim-bridge.service (systemd)', () => {
  const text = readFileSync(join(DIR, 'volc-scim-bridge.service'), 'utf8');
  const entries = text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const);
  const all = (key: string) => entries.filter(([k]) => k === key).map(([, v]) => v);
  const value = (key: string) => all(key)[0];
  const environment = Object.fromEntries(
    all('Environment').map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]),
  );

  it('runs node dist/main.js as an unprivileged user, reloads TLS on SIGHUP, drains on SIGTERM', () => {
    expect(value('ExecStart')).toBe('/usr/bin/node dist/main.js');
    expect(value('User')).not.toBe('root');
    expect(value('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(value('KillSignal')).toBe('SIGTERM');
    const drainMs = loadConfig({}, () => 'unused').shutdownGraceMs;
    expect(Number(value('TimeoutStopSec')) * 1000).toBeGreaterThan(drainMs);
    // A configuration error (exit 2) is not restarted in a loop.
    expect(value('RestartPreventExitStatus')).toBe('2');
    expect(value('NoNewPrivileges')).toBe('true');
    expect(value('ProtectSystem')).toBe('strict');
  });

  it('secrets come as systemd credentials through NAME_FILE, never inline; the settings are valid', () => {
    for (const [name, v] of Object.entries(environment)) {
      if (/TOKEN|SECRET|PASSWORD|DATABASE_URL/.test(name)) expect(name, name).toMatch(/_FILE$/);
      if (name.endsWith('_FILE') && !name.startsWith('TLS_')) expect(v, name).toMatch(/^%d\//);
    }
    const credentials = new Set(all('LoadCredential').map((c) => c.slice(0, c.indexOf(':'))));
    for (const [name, v] of Object.entries(environment))
      if (v.startsWith('%d/')) expect(credentials.has(v.slice(3)), name).toBe(true);
    expect(environment.SCIM_BEARER_TOKENS_FILE).toBeDefined();
    expect(environment.VOLCENGINE_SECRET_KEY_FILE).toBeDefined();
    // The non-file settings as the bridge would load them (paths are checked when it starts).
    const plain = Object.fromEntries(Object.entries(environment).filter(([k]) => !k.endsWith('_FILE')));
    // What EnvironmentFile and the credentials add (see the unit's header).
    const fromFiles = {
      VOLCENGINE_ACCESS_KEY: 'AKLTexample',
      VOLCENGINE_SECRET_KEY: 'example-secret',
      SCIM_BEARER_TOKENS: 'entra:example-token-0123456789',
    };
    expect(loadConfig({ ...fromFiles, ...plain }, () => 'unused').production).toBe(true);
    expect(environment.DATA_DIR).toBe(`/var/lib/${value('StateDirectory')}`);
  });
});
