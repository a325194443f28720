#!/usr/bin/env python3
"""Offline checks of the deployment files under deploy/ against the code.

- every YAML (all documents) and JSON file under deploy/ parses;
- every probe and health-check path (Kubernetes probes, the Dockerfile's
  HEALTHCHECK, the compose health checks of the ordermon services, the
  scrape paths) is a route of adapters/http/src/routes/mod.rs;
- every ORDERMON_* variable named under deploy/ is in the configuration
  reference, docs/configuration.md (its `<NAME>` placeholders match any name);
- every ordermon_* metric in the alerting rules, their tests and the Grafana
  dashboard is recorded in the Rust sources, and is used as its kind allows:
  `_bucket` only for histograms the recorder exports with buckets (the
  `Matcher::Suffix` of infrastructure/telemetry/src/metrics_setup.rs),
  `quantile` only for the other histograms (exported as summaries), `_sum` and
  `_count` for either;
- the dashboard: unique panel ids, every panel with a target with an
  expression, every datasource the provisioned Prometheus uid;
- the Kubernetes manifests: kustomization resources exist, every secretKeyRef
  and configMapRef names a key of the Secret example / a ConfigMap here;
- files the compose stack and Prometheus mount or load exist.

Exits 1 naming every failure. Needs PyYAML (Debian: python3-yaml).
"""

import json
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    print(
        "check-deploy: PyYAML is missing; install it with\n"
        "  apt-get install -y python3-yaml    (or: pip install pyyaml)",
        file=sys.stderr,
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ROUTES = ROOT / "adapters/http/src/routes/mod.rs"
CONFIG_DOC = ROOT / "docs/configuration.md"
METRICS_SETUP = ROOT / "infrastructure/telemetry/src/metrics_setup.rs"

failures = []
summary = []


def fail(check, message):
    failures.append((check, message))


def rel(path):
    return str(Path(path).relative_to(ROOT))


def walk(node):
    """Every (key, value) pair of nested dicts and lists."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


# --- 1. parse ---------------------------------------------------------------

docs = {}  # path -> list of documents
for path in sorted(DEPLOY.rglob("*")):
    if not path.is_file():
        continue
    try:
        if path.suffix in (".yml", ".yaml"):
            docs[path] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        elif path.suffix == ".json":
            docs[path] = [json.loads(path.read_text())]
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        fail("parse", f"{rel(path)}: {e}")
summary.append(("parse", f"{len(docs)} YAML/JSON files, {sum(map(len, docs.values()))} documents"))


def doc_of(name):
    path = DEPLOY / name
    if path not in docs or not docs[path]:
        fail("files", f"deploy/{name} is missing or empty")
        return None
    return docs[path][0]


# --- 2. probe and health-check paths ----------------------------------------

routes = set(re.findall(r'\.route\(\s*"([^"]+)"', ROUTES.read_text()))
if not routes:
    fail("paths", f"no .route(\"...\") found in {rel(ROUTES)}")
probes = []  # (where, path)
for path, ds in docs.items():
    for d in ds:
        if not isinstance(d, dict):
            continue
        for k, v in walk(d):
            if k in ("startupProbe", "livenessProbe", "readinessProbe") and isinstance(v, dict):
                if "httpGet" in v:
                    probes.append((f"{rel(path)} {k}", v["httpGet"].get("path", "/")))
        if d.get("kind") == "ServiceMonitor":
            for ep in d.get("spec", {}).get("endpoints", []):
                probes.append((f"{rel(path)} ServiceMonitor", ep.get("path", "/metrics")))

dockerfile = (DEPLOY / "Dockerfile").read_text()
healthcheck = re.search(r"^HEALTHCHECK\b(.*?)(?<!\\)$", dockerfile, re.M | re.S)
if not healthcheck:
    fail("paths", "deploy/Dockerfile has no HEALTHCHECK")
else:
    urls = re.findall(r"https?://[^/\s\"']+(/[^\s\"']*)", healthcheck.group(0))
    if not urls:
        fail("paths", "the Dockerfile HEALTHCHECK names no http:// URL")
    probes += [("deploy/Dockerfile HEALTHCHECK", u) for u in urls]

compose = doc_of("docker-compose.yml") or {}
ordermon_services = {
    name: svc
    for name, svc in compose.get("services", {}).items()
    if "build" in svc or str(svc.get("image", "")).startswith("ordermon")
}
if len(ordermon_services) < 2:
    fail("paths", "fewer than two ordermon services in deploy/docker-compose.yml")
for name, svc in ordermon_services.items():
    test = svc.get("healthcheck", {}).get("test")
    urls = re.findall(r"https?://[^/\s\"']+(/[^\s\"']*)", " ".join(test) if isinstance(test, list) else str(test))
    if not urls:
        fail("paths", f"compose service {name} has no HTTP health check")
    probes += [(f"deploy/docker-compose.yml {name} healthcheck", u) for u in urls]

prom = doc_of("prometheus/prometheus.yml") or {}
for job in prom.get("scrape_configs", []):
    if job.get("job_name") == "ordermon":
        probes.append(("deploy/prometheus/prometheus.yml ordermon job", job.get("metrics_path", "/metrics")))

for where, p in probes:
    if p not in routes:
        fail("paths", f"{where}: {p} is not a route of {rel(ROUTES)}")
summary.append(("paths", f"{len(probes)} probe/health-check/scrape paths against {len(routes)} routes"))

# --- 3. ORDERMON_* environment variables ------------------------------------

reference = CONFIG_DOC.read_text()
# Names and templates (`ORDERMON_ALERTING__RECEIVERS__<NAME>__<KEY>`); the
# general rule `ORDERMON_<SECTION>__<KEY>`, all placeholders, names no key.
documented = {
    n for n in re.findall(r"ORDERMON_[A-Z0-9_<>]+", reference)
    if re.search(r"(^|_)[A-Z0-9]+(_|$)", re.sub(r"<[A-Z_]+>", "", n[len("ORDERMON_"):]))
}
patterns = [
    re.compile("^" + re.sub(r"<[A-Z_]+>", "[A-Z0-9_]+", re.escape(n).replace(r"\<", "<").replace(r"\>", ">")) + "$")
    for n in documented
]
used = {}
for path in sorted(DEPLOY.rglob("*")):
    if path.is_file():
        for name in re.findall(r"\bORDERMON_[A-Z0-9_]+", path.read_text()):
            used.setdefault(name, set()).add(rel(path))
for name, where in sorted(used.items()):
    if not any(p.match(name) for p in patterns):
        fail(
            "env",
            f"{name} (in {', '.join(sorted(where))}) is not in {rel(CONFIG_DOC)}"
            " (the server refuses unknown keys; only the _FILE keys the reference lists exist)",
        )
summary.append(("env", f"{len(used)} ORDERMON_* names checked against {len(documented)} in the reference"))

# --- 4. metric names --------------------------------------------------------

sources = [
    p for p in ROOT.rglob("*.rs")
    if not any(part in ("target", ".git") for part in p.relative_to(ROOT).parts)
]
metrics, histograms, consts = set(), set(), {}
for p in sources:
    text = p.read_text(errors="replace")
    metrics.update(re.findall(r'"(ordermon_[a-z0-9_]+)"', text))
    consts.update(re.findall(r'const\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*"(ordermon_[a-z0-9_]+)"', text))
    # histogram!("ordermon_…", …) or histogram!(NAME, …) / histogram!(path::NAME, …)
    for m in re.findall(r'histogram!\(\s*("ordermon_[a-z0-9_]+"|(?:[a-z_][a-z0-9_]*::)*[A-Z][A-Z0-9_]*)', text):
        histograms.add(m.strip('"') if m.startswith('"') else m.split("::")[-1])
# Constants may be defined in another file than their use: resolve them last.
histograms = {consts.get(h, h) for h in histograms}
unresolved = sorted(h for h in histograms if not h.startswith("ordermon_"))
if unresolved:
    fail("metrics", f"histogram!() of constants not found as `const NAME: &str = \"ordermon_…\"`: {unresolved}")
bucket_suffixes = re.findall(r'Matcher::Suffix\("([^"]+)"', METRICS_SETUP.read_text())
bucketed = {h for h in histograms if any(h.endswith(s) for s in bucket_suffixes)}
summaries = histograms - bucketed

exprs = []  # (where, promql)
rules = doc_of("prometheus/ordermon-alerts.yml") or {}
for g in rules.get("groups", []):
    for r in g.get("rules", []):
        exprs.append((f"rule {r.get('alert') or r.get('record')}", str(r.get("expr", ""))))
tests = doc_of("prometheus/ordermon-alerts.test.yml") or {}
for i, t in enumerate(tests.get("tests", [])):
    for s in t.get("input_series", []):
        exprs.append((f"rule test {i + 1} input", s.get("series", "")))
dashboard = doc_of("grafana/dashboards/ordermon.json") or {}


def all_panels(ps):
    for p in ps:
        yield p
        yield from all_panels(p.get("panels", []))


for p in all_panels(dashboard.get("panels", [])):
    for t in p.get("targets", []):
        exprs.append((f"panel {p.get('id')} {p.get('title')!r}", t.get("expr", "")))
for v in dashboard.get("templating", {}).get("list", []):
    q = v.get("query")
    exprs.append((f"variable {v.get('name')}", q.get("query", "") if isinstance(q, dict) else str(q or "")))

names = 0
for where, e in exprs:
    for name in re.findall(r"\bordermon_[a-z0-9_]+", e):
        names += 1
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name not in metrics and name[: -len(suffix)] in metrics:
                base = name[: -len(suffix)]
                if base not in histograms:
                    fail("metrics", f"{where}: {name}: {base} is not a histogram")
                elif suffix == "_bucket" and base not in bucketed:
                    fail("metrics", f"{where}: {name}: {base} is exported as a summary (use its quantile label)")
        if base not in metrics:
            fail("metrics", f"{where}: {name} is not recorded anywhere in the Rust sources")
    for name in re.findall(r"\b(ordermon_[a-z0-9_]+)\{[^}]*\bquantile\s*=", e):
        if name not in summaries:
            fail("metrics", f"{where}: {name} has no quantile label (not a summary)")
summary.append((
    "metrics", f"{names} uses in {len(exprs)} expressions; {len(metrics)} names in the sources "
    f"({len(bucketed)} histograms with buckets, {len(summaries)} summaries)",
))

# --- 5. the dashboard -------------------------------------------------------

ds_file = doc_of("grafana/provisioning/datasources/prometheus.yml") or {}
ds_uids = {d.get("uid") for d in ds_file.get("datasources", [])}
ids, panels = set(), 0
for p in all_panels(dashboard.get("panels", [])):
    pid = p.get("id")
    if pid is None or pid in ids:
        fail("dashboard", f"panel {p.get('title')!r}: id {pid} missing or repeated")
    ids.add(pid)
    if p.get("type") == "row":
        continue
    panels += 1
    if not any(str(t.get("expr", "")).strip() for t in p.get("targets", [])):
        fail("dashboard", f"panel {pid} {p.get('title')!r} has no target with an expr")
    for d in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
        if not isinstance(d, dict) or d.get("uid") not in ds_uids:
            fail("dashboard", f"panel {pid} {p.get('title')!r}: datasource {d!r} is not the provisioned uid {sorted(ds_uids)}")
provider = doc_of("grafana/provisioning/dashboards/ordermon.yml") or {}
if not provider.get("providers"):
    fail("dashboard", "deploy/grafana/provisioning/dashboards/ordermon.yml has no provider")
summary.append(("dashboard", f"{panels} panels, {len(ids)} ids, datasource uid {sorted(ds_uids)}"))

# --- 6. Kubernetes ----------------------------------------------------------

k8s = DEPLOY / "kubernetes"
kust = doc_of("kubernetes/kustomization.yaml") or {}
for r in kust.get("resources", []):
    if not (k8s / r).exists():
        fail("kubernetes", f"kustomization resource {r} does not exist")
secrets, configmaps, objects = {}, set(), 0
for path, ds in docs.items():
    if k8s not in path.parents or path.name == "kustomization.yaml":
        continue
    for d in ds:
        objects += 1
        if not (isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name")):
            fail("kubernetes", f"{rel(path)}: a document without apiVersion, kind or metadata.name")
            continue
        if d["kind"] == "Secret":
            secrets[d["metadata"]["name"]] = set(d.get("stringData", {})) | set(d.get("data", {}))
        if d["kind"] == "ConfigMap":
            configmaps.add(d["metadata"]["name"])
refs = 0
for path, ds in docs.items():
    if k8s not in path.parents:
        continue
    for d in ds:
        for k, v in walk(d):
            if k == "secretKeyRef":
                refs += 1
                if v.get("key") not in secrets.get(v.get("name"), set()):
                    fail("kubernetes", f"{rel(path)}: secretKeyRef {v.get('name')}/{v.get('key')} is not in the Secret example")
            if k == "configMapRef":
                refs += 1
                if v.get("name") not in configmaps:
                    fail("kubernetes", f"{rel(path)}: configMapRef {v.get('name')} is not a ConfigMap here")
summary.append(("kubernetes", f"{objects} objects, {refs} secret/configmap references"))

# --- 7. files the stack loads -----------------------------------------------

loaded = 0
for name, svc in compose.get("services", {}).items():
    for vol in svc.get("volumes", []):
        src = str(vol).split(":")[0]
        if src.startswith("."):
            loaded += 1
            if not (DEPLOY / src).exists():
                fail("files", f"compose service {name} mounts {src}, which does not exist under deploy/")
for rf in prom.get("rule_files", []):
    loaded += 1
    if not list((DEPLOY / "prometheus").glob(rf)):
        fail("files", f"prometheus.yml rule file {rf} does not exist beside it")
for rf in tests.get("rule_files", []):
    loaded += 1
    if not list((DEPLOY / "prometheus").glob(rf)):
        fail("files", f"ordermon-alerts.test.yml rule file {rf} does not exist beside it")
summary.append(("files", f"{loaded} files mounted or loaded"))

# ---------------------------------------------------------------------------

failed = {check for check, _ in failures}
for check, text in summary:
    print(f"{'FAIL' if check in failed else 'ok  '}  {check:<10} {text}")
if failures:
    print(f"\ncheck-deploy: {len(failures)} failure(s):", file=sys.stderr)
    for check, message in failures:
        print(f"  {check}: {message}", file=sys.stderr)
    sys.exit(1)
print("check-deploy: all checks passed")
