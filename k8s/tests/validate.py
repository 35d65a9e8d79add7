#!/usr/bin/env python3
"""Offline checks of k8s/: every manifest against pinned schemas (Kubernetes 1.37 from the
kubernetes-validate package, SpinApp from SpinKube's CRD, PrometheusRule and ServiceMonitor from
the @kubernetes-models/prometheus-operator npm package), the scaling guide's numbers, the
consistency of slots, memory, budgets and grace periods, and that every metric the alerts use is
exported by the host (from a real /metrics scrape) or is a standard Kubernetes series.

Usage: validate.py --metrics FILE --spinkube-crds DIR --node-modules DIR
"""

import argparse
import copy
import json
import os
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.37.0"
K8S_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "patches", "replicas", "images", "labels", "namespace"}
# Series the alerts may use that come from the cluster, not from the host.
CLUSTER_METRICS = {
    "container_cpu_usage_seconds_total": "cAdvisor",
    "container_memory_working_set_bytes": "cAdvisor",
    "kube_pod_container_resource_requests": "kube-state-metrics",
    "kube_pod_container_resource_limits": "kube-state-metrics",
}
PROMQL_WORDS = {
    "sum", "avg", "max", "min", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "rate", "irate", "increase", "histogram_quantile", "and", "or", "unless", "le", "offset", "bool",
}

failures = []


def check(ok, message):
    print(("ok   " if ok else "FAIL ") + message)
    if not ok:
        failures.append(message)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, patch):
    """Strategic merge for what our patches use: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    named = lambda xs: all(isinstance(x, dict) and "name" in x for x in xs)
    if isinstance(base, list) and isinstance(patch, list) and named(base) and named(patch):
        out = [copy.deepcopy(x) for x in base]
        for p in patch:
            for i, b in enumerate(out):
                if b["name"] == p["name"]:
                    out[i] = merge(b, p)
                    break
            else:
                out.append(copy.deepcopy(p))
        return out
    return copy.deepcopy(patch)


def find(objs, kind, name):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(hits) != 1:
        raise SystemExit(f"{kind}/{name}: {len(hits)} matches")
    return hits[0]


def build(directory):
    """Renders a kustomization (the subset of kustomize this repository uses; anything else is
    refused rather than ignored)."""
    k = load_docs(os.path.join(directory, "kustomization.yaml"))[0]
    unknown = set(k) - KUSTOMIZE_KEYS
    if unknown:
        raise SystemExit(f"{directory}: kustomize fields this check does not render: {sorted(unknown)}")
    objs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(directory, r))
        objs += build(p) if os.path.isdir(p) else load_docs(p)
    for entry in k.get("patches", []):
        for patch in load_docs(os.path.join(directory, entry["path"])):
            target = find(objs, patch["kind"], patch["metadata"]["name"])
            objs[objs.index(target)] = merge(target, patch)
    for rep in k.get("replicas", []):
        find(objs, "Deployment", rep["name"])["spec"]["replicas"] = rep["count"]
    for img in k.get("images", []):
        for o in objs:
            for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f'{img.get("newName", name)}:{img.get("newTag", tag)}'
    for lab in k.get("labels", []):
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab["pairs"])
    if "namespace" in k:
        for o in objs:
            o["metadata"]["namespace"] = k["namespace"]
    return objs


def crd_schema(crd_dir, api_version, kind):
    group, version = api_version.split("/")
    for f in os.listdir(crd_dir):
        if not f.endswith(".yaml"):
            continue
        for crd in load_docs(os.path.join(crd_dir, f)):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            if spec["group"] == group and spec["names"]["kind"] == kind:
                for v in spec["versions"]:
                    if v["name"] == version:
                        return v["schema"]["openAPIV3Schema"]
    raise SystemExit(f"no CRD for {api_version} {kind} in {crd_dir}")


def validate(objs, where, args):
    operator = []
    for o in objs:
        label = f'{where}: {o["kind"]}/{o["metadata"]["name"]}'
        if o["apiVersion"].startswith("core.spinkube.dev/"):
            schema = crd_schema(args.spinkube_crds, o["apiVersion"], o["kind"])
            errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(o), key=str)
            check(not errors, f"{label} against the SpinKube CRD " + "; ".join(e.message for e in errors[:3]))
        elif o["apiVersion"].startswith("monitoring.coreos.com/"):
            operator.append((label, o))
        else:
            try:
                kubernetes_validate.validate(o, K8S_VERSION, strict=True)
                check(True, f"{label} against Kubernetes {K8S_VERSION} (strict)")
            except kubernetes_validate.ValidationError as e:
                check(False, f"{label}: {e.message} at {list(e.path)}")
    if operator:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "validate_prometheus_operator.mjs")
        out = subprocess.run(
            ["node", script, args.node_modules],
            input=json.dumps([o for _, o in operator]),
            capture_output=True,
            text=True,
        )
        results = json.loads(out.stdout) if out.returncode == 0 else None
        check(results is not None, f"{where}: prometheus-operator validation ran {out.stderr.strip()[:500]}")
        for (label, _), err in zip(operator, results or []):
            check(err is None, f"{label} against the prometheus-operator schema {err or ''}")


def check_front_door(objs, where):
    """The API is published, the admin port is not; only monitoring reaches it; keys from a Secret."""
    svc = find(objs, "Service", "stt-api")
    check([p["name"] for p in svc["spec"]["ports"]] == ["http"], f"{where}: Service stt-api publishes only http")
    pol = find(objs, "NetworkPolicy", "stt-api")
    rules = pol["spec"]["ingress"]
    admin = [r for r in rules if any(p["port"] == "admin" for p in r.get("ports", []))]
    check(len(admin) == 1 and admin[0].get("from"), f"{where}: NetworkPolicy admits only named sources to the admin port")
    dep = find(objs, "Deployment", "stt-api")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    ref = env.get("SPIN_VARIABLE_API_KEYS", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == "stt-api-keys" and ref.get("optional") is True, f"{where}: API keys from the optional Secret stt-api-keys")


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def cpu_cores(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def mib(q):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for u, f in units.items():
        if str(q).endswith(u):
            return float(str(q)[: -len(u)]) * f
    return float(q) / (1 << 20)


HPA_GUIDE = {
    "apiVersion": "autoscaling/v2",
    "spec": {
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
        },
    },
}


def check_hpa(hpa, target, where):
    check(hpa["apiVersion"] == HPA_GUIDE["apiVersion"], f"{where}: HPA is autoscaling/v2")
    for key, want in HPA_GUIDE["spec"].items():
        check(hpa["spec"].get(key) == want, f"{where}: HPA {key} = {want} (got {hpa['spec'].get(key)})")
    ref = hpa["spec"]["scaleTargetRef"]
    check(ref == {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, f"{where}: HPA targets Deployment {target}")


def check_deployment(objs, where, guide_numbers):
    dep = find(objs, "Deployment", "stt-api")
    check(dep["metadata"]["labels"].get("app") == "stt-api", f"{where}: Deployment labelled app: stt-api")
    pod = dep["spec"]["template"]["spec"]
    c = next(c for c in pod["containers"] if c["name"] == "stt-api")
    res, env = c["resources"], env_of(c)
    if guide_numbers:
        want = {"requests": {"cpu": "2.5", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}
        check(res == want, f"{where}: resources are the guide's {want} (got {res})")
    slots = int(env["STT_INSTANCE_SLOTS"])
    check(env.get("WHISPER_N_THREADS") == env["STT_INSTANCE_SLOTS"], f"{where}: WHISPER_N_THREADS = STT_INSTANCE_SLOTS = {slots}")
    check(slots == int(cpu_cores(res["limits"]["cpu"])), f"{where}: one slot per core of the CPU limit ({slots})")
    parents = int(env.get("STT_WAITING_PARENTS", slots)) * int(env.get("STT_WAITING_PARENT_MEMORY_MB", 320))
    used = slots * int(env["STT_INSTANCE_MEMORY_MB"]) + parents + 512
    check(
        used <= mib(res["limits"]["memory"]),
        f"{where}: slots × instance memory + waiting parents × their memory + 512 MiB ≤ memory limit ({used} MiB)",
    )
    longest = int(env["STT_CPU_BUDGET_BASE_MS"]) / 1000 + float(env["STT_CPU_BUDGET_PER_AUDIO_SECOND"]) * float(
        env["SPIN_VARIABLE_MAX_DURATION_SECONDS"]
    )
    drain = int(env["STT_DRAIN_SECONDS"])
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    check(drain >= longest, f"{where}: drain {drain} s ≥ the longest request's CPU budget {longest:.0f} s")
    check(grace > drain + pre_stop, f"{where}: terminationGracePeriodSeconds {grace} > drain {drain} + preStop {pre_stop}")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        g = c[probe]["httpGet"]
        check(g["path"] == path and g["port"] in ("admin", ports["admin"]), f"{where}: {probe} GET {path} on the admin port")
    check(env["STT_ADMIN_LISTEN"].endswith(f":{ports['admin']}"), f"{where}: STT_ADMIN_LISTEN is the admin port")
    check(env["STT_LISTEN"].endswith(f":{ports['http']}"), f"{where}: STT_LISTEN is the http port")


def host_metric_names(metrics_text):
    names = set()
    for line in metrics_text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            name, kind = m.groups()
            names.add(name)
            if kind == "counter":
                names.add(name + "_total")
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def check_alerts(rules, metrics_text):
    exported = host_metric_names(metrics_text)
    alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"]}
    for name in ["HighCPUUtilization", "HighLatency"]:
        check(name in alerts, f"the guide's alert {name} exists")
    check('path=~"/transcribe' in alerts["HighLatency"]["expr"], "HighLatency watches /transcribe")
    thresholds = {
        "HighCPUUtilization": "0.7", "HighCPUUtilizationCritical": "0.85",
        "HighMemoryUsage": "0.7", "HighMemoryUsageCritical": "0.85",
        "HighLatency": "2", "HighLatencyCritical": "5",
        "HighRTF": "0.5", "HighRTFCritical": "1.0",
        "HighErrorRate": "0.01", "HighErrorRateCritical": "0.05",
    }
    for name, value in thresholds.items():
        expr = alerts.get(name, {}).get("expr", "")
        check(re.search(r">\s*" + re.escape(value) + r"\s*$", expr.strip()) is not None, f"{name} fires above {value}")
    for name, rule in alerts.items():
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values are not metric names
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # nor range durations
        idents = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*=~?", expr))
        grouping = set(re.findall(r"(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr))
        grouped = {x.strip() for g in grouping for x in g.split(",")}
        metrics = {i for i in idents if i not in PROMQL_WORDS | labels | grouped}
        for m in sorted(metrics):
            origin = "the host's /metrics" if m in exported else CLUSTER_METRICS.get(m)
            check(origin is not None, f"{name}: {m} is exported by {origin or 'nothing known'}")


def check_dockerfile():
    """The runtime image copies only what `make dist` produces, and runs what it copied."""
    with open(os.path.join(K8S_DIR, "Dockerfile")) as f:
        docker = f.read()
    with open(os.path.join(K8S_DIR, "..", "Makefile")) as f:
        recipe = re.search(r"^dist:.*?(?=^\S)", f.read(), re.M | re.S)
    recipe = recipe.group(0) if recipe else ""
    copies = re.findall(r"^COPY --from=build (\S+) (\S+)", docker, re.M)
    check(copies == [("/src/dist/", "/app/")], f"the image copies dist/ only ({copies})")
    check("RUN make dist" in docker, "the build stage runs `make dist`")
    entry = re.search(r'^ENTRYPOINT \["/app/([^"]+)"', docker, re.M)
    cmd = re.search(r'^CMD \[(.*)\]', docker, re.M)
    for produced in [entry.group(1) if entry else "?", "spin.toml", "build/stt_function.wasm", "build/cwasm-cache", "models/"]:
        check(f"dist/{produced}" in recipe, f"make dist produces {produced}")
    check(cmd is not None and '"/app/spin.toml"' in cmd.group(1), "the image serves /app/spin.toml")
    check(re.search(r"^USER \d+", docker, re.M) is not None, "the runtime image runs as a non-root user")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metrics", required=True, help="a scrape of a running stt-host's /metrics")
    ap.add_argument("--spinkube-crds", required=True)
    ap.add_argument("--node-modules", required=True)
    args = ap.parse_args()
    with open(args.metrics) as f:
        metrics_text = f.read()

    base = build(os.path.join(K8S_DIR, "base"))
    for where in ["base", "overlays/prod", "overlays/dev", "spinkube"]:
        objs = build(os.path.join(K8S_DIR, where))
        validate(objs, where, args)
        if where != "spinkube":
            check_deployment(objs, where, guide_numbers=where != "overlays/dev")
            check_front_door(objs, where)
    check_hpa(find(base, "HorizontalPodAutoscaler", "stt-api-hpa"), "stt-api", "base")
    check_hpa(find(build(os.path.join(K8S_DIR, "overlays/prod")), "HorizontalPodAutoscaler", "stt-api-hpa"), "stt-api", "prod")
    spin = build(os.path.join(K8S_DIR, "spinkube"))
    app = find(spin, "SpinApp", "stt-api-spin")
    check(app["spec"]["executor"] == "containerd-shim-spin" and app["spec"]["enableAutoscaling"] is True, "SpinApp: shim executor, autoscaling")
    check("memory" in app["spec"].get("invocationLimits", {}), "SpinApp: invocationLimits memory")
    check(app["spec"]["resources"] == {"requests": {"cpu": "2.5", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}, "SpinApp: the guide's resources")
    check_hpa(find(spin, "HorizontalPodAutoscaler", "stt-api-spin-hpa"), "stt-api-spin", "spinkube")
    with open(os.path.join(K8S_DIR, "..", "spin.toml")) as f:
        declared = set(re.findall(r"^(\w+)\s*=\s*\{\s*default", f.read(), re.M))
    given = {v["name"] for v in app["spec"]["variables"]}
    check(given <= declared, f"SpinApp variables {sorted(given)} are declared in spin.toml")
    keys = next((v for v in app["spec"]["variables"] if v["name"] == "api_keys"), {})
    check(keys.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "stt-api-keys", "SpinApp: api_keys from the Secret stt-api-keys")
    check_alerts(find(base, "PrometheusRule", "stt-scaling"), metrics_text)
    check_dockerfile()

    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
