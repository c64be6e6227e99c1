import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
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
      expect(d.apiVersion, d.__file).toMatch(/^(v1|apps\/v1|policy\/v1|autoscaling\/v2)$/);
      expect(d.metadata?.name, d.__file).toBe('volc-scim-bridge');
    }
    expect(docs.map((d) => d.kind).sort()).toEqual(
      [
        'Deployment',
        'HorizontalPodAutoscaler',
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
