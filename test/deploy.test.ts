/**
 * The Kubernetes manifests (deploy/): rendered as `kubectl kustomize` renders them (without kubectl, by a
 * small renderer here that does what deploy/ uses, and is checked against kubectl where both run), then
 * checked for what the processes need: images, commands, env, probes, resources, security, autoscalers.
 * The KEDA trigger's query runs on a real database with jobs in every state the queue has.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import pg from 'pg';
import { parseAllDocuments } from 'yaml';
import { type Database, openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { claim } from '../src/queue/queue.ts';
import { CHECK_TIMEOUT_MS } from '../src/ops/probes.ts';
import { freshPostgres } from './support/db.ts';

/** An object of a manifest (or a part of one), read loosely: the assertions say what they expect. */
type K8s = Record<string, any>;

const ROOT = resolve(__dirname, '..');
const DEPLOY = join(ROOT, 'deploy');

/** `registry:5000/ganvas-api:1.0` is ganvas-api's name `registry:5000/ganvas-api` and its tag `1.0`. */
function splitImage(image: string): { name: string; tag?: string } {
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/')
    ? { name: image.slice(0, colon), tag: image.slice(colon + 1) }
    : { name: image };
}

function parseYaml(text: string, where: string): K8s[] {
  const docs = parseAllDocuments(text);
  for (const d of docs) if (d.errors.length) throw new Error(`${where}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS() as K8s | null).filter((o): o is K8s => o !== null);
}

const kubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
})();

// ---- the renderer used where kubectl is absent: exactly the kustomize features deploy/ uses, or an error

const FEATURES = new Set(['apiVersion', 'kind', 'resources', 'components', 'namespace', 'images', 'patches']);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PriorityClass',
  'StorageClass',
]);

function kustomize(dir: string, objects: K8s[] = []): K8s[] {
  const file = join(dir, 'kustomization.yaml');
  const k = parseYaml(readFileSync(file, 'utf8'), file)[0];
  const unknown = Object.keys(k).filter((key) => !FEATURES.has(key));
  if (unknown.length)
    throw new Error(`${file}: this test's renderer does not do ${unknown.join(', ')} (install kubectl, or teach it)`);
  for (const r of (k.resources ?? []) as string[]) {
    const path = join(dir, r);
    objects = objects.concat(
      statSync(path).isDirectory() ? kustomize(path) : parseYaml(readFileSync(path, 'utf8'), path),
    );
  }
  for (const c of (k.components ?? []) as string[]) objects = kustomize(join(dir, c), objects);
  if (k.namespace) for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  for (const img of (k.images ?? []) as K8s[])
    for (const c of objects.flatMap((o) => o.spec?.template?.spec?.containers ?? [])) {
      const { name, tag = img.newTag } = splitImage(c.image);
      if (img.digest) throw new Error(`${file}: this test's renderer does not do image digests`);
      if (name === img.name) c.image = `${img.newName ?? name}${tag ? `:${tag}` : ''}`;
    }
  for (const p of (k.patches ?? []) as K8s[]) {
    const keys = (o: K8s) => Object.keys(o).sort().join();
    if (keys(p) !== 'patch,target' || typeof p.patch !== 'string' || !/^(kind,name|kind)$/.test(keys(p.target)))
      throw new Error(`${file}: only inline JSON 6902 patches with a target kind (and name)`);
    const matches = (o: K8s) =>
      new RegExp(`^(${p.target.kind})$`).test(o.kind) &&
      (!p.target.name || new RegExp(`^(${p.target.name})$`).test(o.metadata.name));
    for (const o of objects.filter(matches)) for (const op of parseYaml(p.patch, file)[0] as K8s[]) jsonPatch(o, op);
  }
  return objects;
}

function jsonPatch(doc: K8s, { op, path, value }: K8s): void {
  const keys = (path as string)
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = keys.pop()!;
  const parent: K8s = keys.reduce((node, key) => {
    if (node?.[key] === undefined) throw new Error(`patch ${op} ${path}: no ${key}`);
    return node[key];
  }, doc);
  const index = last === '-' ? parent.length : Number(last);
  if (op === 'add' && Array.isArray(parent)) parent.splice(index, 0, structuredClone(value));
  else if (op === 'add' || (op === 'replace' && last in parent)) parent[last] = structuredClone(value);
  else if (op === 'remove' && Array.isArray(parent) && last in parent) parent.splice(index, 1);
  else if (op === 'remove' && last in parent) Reflect.deleteProperty(parent, last);
  else throw new Error(`patch ${op} ${path}: not done by this test's renderer, or nothing there`);
}

function render(dir: string): K8s[] {
  const path = join(DEPLOY, dir);
  return kubectl
    ? parseYaml(
        execFileSync('kubectl', ['kustomize', path], { encoding: 'utf8', timeout: 60_000 }),
        `kubectl kustomize ${path}`,
      )
    : kustomize(path);
}

// ---- what the checks read

const key = (o: K8s) => `${o.kind}/${o.metadata.name}`;
function find(objects: K8s[], kind: string, name: string): K8s {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind} ${name} is rendered (have ${objects.map(key).join(', ')})`);
  return found;
}
const podOf = (workload: K8s): K8s => workload.spec.template;
const containerOf = (workload: K8s): K8s => {
  assert.equal(podOf(workload).spec.containers.length, 1, `${key(workload)} has one container`);
  return podOf(workload).spec.containers[0];
};
const env = (c: K8s, name: string): K8s | undefined => (c.env as K8s[] | undefined)?.find((e) => e.name === name);
const envValue = (c: K8s, name: string): string | undefined => env(c, name)?.value;
/** A probe's or Service's port, by number or by the container port's name. */
const portNumber = (c: K8s, port: number | string): number =>
  typeof port === 'number' ? port : (c.ports as K8s[]).find((p) => p.name === port)?.containerPort;
const probe = (c: K8s, which: string) => {
  const p = c[which]?.httpGet;
  assert.ok(p, `${c.name} has an HTTP ${which}`);
  // Kubernetes waits 1 s unless told: a readiness check may take its own CHECK_TIMEOUT_MS
  assert.ok((c[which].timeoutSeconds ?? 1) * 1000 > CHECK_TIMEOUT_MS, `${c.name}'s ${which} waits for the checks`);
  return { path: p.path as string, port: portNumber(c, p.port) };
};
const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const workloads = (objects: K8s[]) => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job');

const SECRET = { name: 'ganvas-database', key: 'DATABASE_URL' };
const API_PORT = 4000;
const WORKER_PORT = 9464;

let base: K8s[];
let migration: K8s[];
let scaleToZero: K8s[];

before(() => {
  base = render('base');
  migration = render('migrate');
  scaleToZero = render('scale-to-zero');
});

test('every kustomization renders to valid objects in one namespace', () => {
  const kinds = (objects: K8s[]) => objects.map(key).sort();
  assert.deepEqual(kinds(base), [
    'Deployment/ganvas-api',
    'Deployment/ganvas-worker',
    'HorizontalPodAutoscaler/ganvas-api',
    'PodDisruptionBudget/ganvas-api',
    'PodDisruptionBudget/ganvas-worker',
    'ScaledObject/ganvas-worker',
    'Service/ganvas-api',
    'TriggerAuthentication/ganvas-database',
  ]);
  assert.deepEqual(kinds(migration), ['Job/ganvas-migrate']);
  const namespace = base[0].metadata.namespace;
  assert.ok(namespace, 'deploy/settings names the namespace');
  for (const o of [...base, ...migration, ...scaleToZero]) {
    assert.match(o.apiVersion, /^[\w.]+(\/\w+)?$/, `${key(o)} has an apiVersion`);
    assert.equal(o.metadata.namespace, namespace, `${key(o)} is in the namespace of deploy/settings`);
  }
});

test(
  'without kubectl the manifests render as kubectl renders them',
  { skip: !kubectl && 'kubectl is not installed' },
  () => {
    const sorted = (objects: K8s[]) => [...objects].sort((a, b) => key(a).localeCompare(key(b)));
    for (const [dir, rendered] of [
      ['base', base],
      ['migrate', migration],
      ['scale-to-zero', scaleToZero],
    ] as const)
      assert.deepEqual(sorted(kustomize(join(DEPLOY, dir))), sorted(rendered), `deploy/${dir}`);
  },
);

test('the API, the worker and the migration run the release images with their commands', () => {
  const api = containerOf(find(base, 'Deployment', 'ganvas-api'));
  const worker = containerOf(find(base, 'Deployment', 'ganvas-worker'));
  const migrate = containerOf(find(migration, 'Job', 'ganvas-migrate'));
  const [a, w] = [splitImage(api.image), splitImage(worker.image)];
  assert.match(a.name, /(^|\/)ganvas-api$/);
  assert.match(w.name, /(^|\/)ganvas-worker$/);
  assert.ok(a.tag, 'the images carry a release tag');
  assert.equal(a.tag, w.tag, 'the API and the workers run the same release');
  assert.equal(migrate.image, api.image, 'the migration runs the API image');
  const entry = (c: K8s) => {
    assert.deepEqual(
      c.command.slice(0, 3),
      ['node', '-r', '@swc-node/register'],
      `${c.name} runs TypeScript through swc-node`,
    );
    assert.ok(
      existsSync(join(ROOT, c.command[3])),
      `${c.name}'s entry ${c.command[3]} exists (the images' workdir is the repository)`,
    );
    return c.command[3];
  };
  assert.equal(entry(api), 'bin/api.ts');
  assert.equal(entry(worker), 'bin/worker.ts');
  assert.equal(entry(migrate), 'bin/migrate.ts');
});

test('every process reads DATABASE_URL from the one Secret, which the example shows without a real password', () => {
  for (const w of workloads([...base, ...migration]))
    assert.deepEqual(env(containerOf(w), 'DATABASE_URL')?.valueFrom, { secretKeyRef: SECRET }, key(w));
  const [example] = parseYaml(
    readFileSync(join(DEPLOY, 'database-secret.example.yaml'), 'utf8'),
    'database-secret.example.yaml',
  );
  assert.equal(example.kind, 'Secret');
  assert.equal(example.metadata.name, SECRET.name);
  assert.equal(example.metadata.namespace, base[0].metadata.namespace);
  const url = new URL(example.stringData[SECRET.key]);
  assert.match(url.protocol, /^postgres(ql)?:$/);
  assert.equal(url.password, 'REPLACE-ME', 'a placeholder, never a password');
});

test('the API: env, probes on /healthz and /readyz, metrics, Service, HPA and PDB', () => {
  const deployment = find(base, 'Deployment', 'ganvas-api');
  const api = containerOf(deployment);
  assert.equal(envValue(api, 'HOST'), '0.0.0.0');
  assert.equal(envValue(api, 'PORT'), String(API_PORT));
  assert.match(envValue(api, 'PUBLIC_URL')!, /^https:\/\//, 'webhook messages link images at the public address');
  assert.deepEqual(probe(api, 'livenessProbe'), { path: '/healthz', port: API_PORT });
  assert.deepEqual(probe(api, 'startupProbe'), { path: '/healthz', port: API_PORT });
  assert.deepEqual(probe(api, 'readinessProbe'), { path: '/readyz', port: API_PORT });
  assert.deepEqual(podOf(deployment).metadata.annotations, {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(API_PORT),
    'prometheus.io/path': '/metrics',
  });
  assert.equal(deployment.spec.replicas, undefined, 'the HPA owns the count');

  const service = find(base, 'Service', 'ganvas-api');
  assert.ok(selects(service.spec.selector, podOf(deployment).metadata.labels), 'the Service selects the API pods');
  assert.deepEqual(
    service.spec.ports.map((p: K8s) => portNumber(api, p.targetPort)),
    [API_PORT],
  );

  const hpa = find(base, 'HorizontalPodAutoscaler', 'ganvas-api');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'ganvas-api' });
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
  assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');
  assert.ok(api.resources.requests.cpu, 'CPU utilization is a share of the CPU requested');

  const pdb = find(base, 'PodDisruptionBudget', 'ganvas-api');
  assert.ok(selects(pdb.spec.selector.matchLabels, podOf(deployment).metadata.labels));
  assert.ok(pdb.spec.maxUnavailable < hpa.spec.minReplicas, 'a drain leaves an API pod serving');
});

test('the worker: env, a GPU, probes on WORKER_PORT, metrics, a grace period longer than a batch, a PDB', () => {
  const deployment = find(base, 'Deployment', 'ganvas-worker');
  const worker = containerOf(deployment);
  assert.equal(envValue(worker, 'GANVAS_BACKEND'), 'node-gpu');
  assert.equal(envValue(worker, 'MODEL_DIR'), 'models/default');
  assert.equal(
    envValue(worker, 'MODEL_DIR'),
    envValue(containerOf(find(base, 'Deployment', 'ganvas-api')), 'MODEL_DIR'),
    'the API offers the model the workers serve',
  );
  assert.equal(envValue(worker, 'HOST'), '0.0.0.0', 'the probes reach WORKER_PORT on the pod IP');
  assert.equal(envValue(worker, 'WORKER_PORT'), String(WORKER_PORT));
  assert.equal(envValue(worker, 'WORKER_MAX_BATCH'), '64');
  assert.equal(envValue(worker, 'WORKER_LEASE_SECONDS'), '30');
  assert.equal(env(worker, 'WORKER_ID')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
  assert.equal(String(worker.resources.limits['nvidia.com/gpu']), '1');
  assert.deepEqual(probe(worker, 'livenessProbe'), { path: '/healthz', port: WORKER_PORT });
  assert.deepEqual(probe(worker, 'startupProbe'), { path: '/healthz', port: WORKER_PORT });
  assert.deepEqual(probe(worker, 'readinessProbe'), { path: '/readyz', port: WORKER_PORT });
  assert.deepEqual(podOf(deployment).metadata.annotations, {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(WORKER_PORT),
    'prometheus.io/path': '/metrics',
  });
  assert.ok(
    podOf(deployment).spec.terminationGracePeriodSeconds >= 60,
    'SIGTERM leaves time to finish the batch in hand',
  );
  assert.equal(deployment.spec.strategy.rollingUpdate.maxSurge, 0, 'a rollout needs no spare GPU');
  assert.equal(deployment.spec.replicas, undefined, 'KEDA owns the count');
  const pdb = find(base, 'PodDisruptionBudget', 'ganvas-worker');
  assert.ok(selects(pdb.spec.selector.matchLabels, podOf(deployment).metadata.labels));
  assert.ok(
    !selects(pdb.spec.selector.matchLabels, podOf(find(base, 'Deployment', 'ganvas-api')).metadata.labels),
    'and not the API pods',
  );
});

test("every pod runs as the images' user node (uid 1000), unprivileged, with resources requested", () => {
  for (const w of workloads([...base, ...migration])) {
    const pod = podOf(w).spec;
    assert.equal(pod.securityContext.runAsNonRoot, true, key(w));
    assert.equal(pod.securityContext.runAsUser, 1000, key(w));
    for (const c of pod.containers) {
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, key(w));
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], key(w));
      if (c.securityContext.readOnlyRootFilesystem) {
        const tmp = (c.volumeMounts as K8s[]).find((m) => m.mountPath === '/tmp');
        assert.ok(
          tmp && (pod.volumes as K8s[]).some((v) => v.name === tmp.name && v.emptyDir),
          `${key(w)} can write /tmp`,
        );
      }
      assert.ok(
        c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory,
        `${key(w)} requests CPU and memory, limits memory`,
      );
    }
  }
  const job = find(migration, 'Job', 'ganvas-migrate');
  assert.equal(podOf(job).spec.restartPolicy, 'Never');
});

test('KEDA scales the workers on the queue: min 1 in base, 0 in scale-to-zero, and nothing else differs', () => {
  const so = find(base, 'ScaledObject', 'ganvas-worker');
  assert.equal(so.spec.scaleTargetRef.name, 'ganvas-worker');
  assert.equal(so.spec.minReplicaCount, 1);
  assert.ok(so.spec.maxReplicaCount > 1);
  const [trigger] = so.spec.triggers;
  assert.equal(trigger.type, 'postgresql');
  assert.ok(Number(trigger.metadata.targetQueryValue) > 0);
  const auth = find(base, 'TriggerAuthentication', trigger.authenticationRef.name);
  assert.deepEqual(auth.spec.secretTargetRef, [{ parameter: 'connection', ...SECRET }]);
  const model = /g\."model" = '([^']+)'/.exec(trigger.metadata.query)?.[1];
  assert.equal(
    model,
    basename(envValue(containerOf(find(base, 'Deployment', 'ganvas-worker')), 'MODEL_DIR')!),
    'the query counts the model the workers serve',
  );

  const zero = structuredClone(base);
  find(zero, 'ScaledObject', 'ganvas-worker').spec.minReplicaCount = 0;
  assert.deepEqual(scaleToZero, zero);
});

// ---- the KEDA query on a real database

let db: Database;
let databaseUrl = '';
let drop: () => Promise<void>;

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  databaseUrl = pgdb.url;
  db = await openDatabase({ url: pgdb.url });
  await migrate(db);
});

after(async () => {
  await db?.close();
  await drop?.();
});

interface QueueCase {
  what: string;
  images: number;
  /** what the query should add for it */
  counts: number;
  model?: string;
  status?: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'CANCELED';
  stored?: number;
  /** columns of its Job row (SQL expressions); null: it has no job */
  job?: Record<string, string> | null;
}

const LIVE = `now() + interval '30 seconds'`;
const LAPSED = `now() - interval '1 second'`;
const CASES: QueueCase[] = [
  { what: 'queued and due', images: 4, counts: 4 },
  {
    what: 'being drawn (lease held), 1 of 3 images stored',
    images: 3,
    stored: 1,
    status: 'RUNNING',
    job: { lockedBy: `'w1'`, lockedUntil: LIVE, attempts: '1' },
    counts: 2,
  },
  {
    what: 'its worker died (lease lapsed), 2 of 6 images stored: claimable again',
    images: 6,
    stored: 2,
    status: 'RUNNING',
    job: { lockedBy: `'w2'`, lockedUntil: LAPSED, attempts: '1' },
    counts: 4,
  },
  {
    what: 'its last attempt being drawn',
    images: 5,
    status: 'RUNNING',
    job: { lockedBy: `'w3'`, lockedUntil: LIVE, attempts: '3' },
    counts: 5,
  },
  {
    what: 'waiting to be retried (runAt later)',
    images: 7,
    job: { runAt: `now() + interval '10 seconds'`, attempts: '1', lastError: `'boom'` },
    counts: 0,
  },
  {
    what: 'used every attempt, lease lapsed (failExhausted ends it)',
    images: 8,
    status: 'RUNNING',
    job: { lockedBy: `'w4'`, lockedUntil: LAPSED, attempts: '3' },
    counts: 0,
  },
  {
    what: 'canceled while running (its worker drops it)',
    images: 9,
    status: 'CANCELED',
    job: { lockedBy: `'w5'`, lockedUntil: LIVE, attempts: '1' },
    counts: 0,
  },
  { what: 'for a model these workers do not serve', images: 10, model: 'other', counts: 0 },
  { what: 'finished (no job left)', images: 11, status: 'SUCCEEDED', job: null, counts: 0 },
];

async function add(c: QueueCase): Promise<void> {
  const g = await db.prisma.generation.create({
    data: {
      kind: 'TEXT_TO_IMAGE',
      captions: ['a flower'],
      seed: 1,
      model: c.model ?? 'default',
      imageCount: c.images,
      status: c.status ?? 'QUEUED',
    },
  });
  for (let index = 0; index < (c.stored ?? 0); index++)
    await db.prisma.image.create({
      data: {
        generationId: g.id,
        index,
        width: 64,
        height: 64,
        caption: 'a flower',
        seed: 1,
        token: `t${index}`,
        png: new Uint8Array([0]),
      },
    });
  if (c.job === null) return;
  await db.prisma.job.create({ data: { generationId: g.id } });
  const set = Object.entries(c.job ?? {}).map(([column, sql]) => `"${column}" = ${sql}`);
  if (set.length) await db.query(`UPDATE "Job" SET ${set.join(', ')} WHERE "generationId" = $1`, [g.id]);
}

test('the KEDA query counts the images still to draw of due and running jobs, exactly', async () => {
  const query: string = find(base, 'ScaledObject', 'ganvas-worker').spec.triggers[0].metadata.query;
  // as KEDA runs it: the query verbatim, on a connection of its own, one number back
  const keda = new pg.Client({ connectionString: databaseUrl });
  await keda.connect();
  const value = async (): Promise<number> => {
    const { rows, fields } = await keda.query(query);
    assert.equal(rows.length, 1);
    assert.equal(fields.length, 1);
    return rows[0][fields[0].name] as number;
  };
  try {
    assert.equal(await value(), 0, 'an empty queue reads 0 (not NULL): KEDA may stop the last worker');
    let total = 0;
    for (const c of CASES) {
      await add(c);
      total += c.counts;
      assert.equal(await value(), total, c.what);
    }
    assert.equal(total, 15);
    // a worker claiming the due jobs does not change it: work in hand still needs its worker
    const claimed = await claim(db, 'w6', ['default'], 100, 30);
    assert.equal(claimed.length, 2, 'the queued one and the one whose worker died');
    assert.equal(await value(), total);
  } finally {
    await keda.end();
  }
});
