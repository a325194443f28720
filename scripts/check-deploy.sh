#!/usr/bin/env bash
# Offline checks of the deployment files under deploy/: Prometheus
# configuration and alerting rules (promtool, with the rules' unit tests), the
# Kubernetes kustomization renders (when kubectl is there), and
# scripts/check-deploy.py (paths, variables, metrics, dashboard). Installs
# promtool (Debian's prometheus package) and PyYAML when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

# The first Python 3 that has PyYAML (python3-yaml goes to Debian's python3).
python_with_yaml() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import yaml' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

if ! command -v promtool >/dev/null 2>&1; then
  log "installing prometheus (for promtool)"
  apt_install prometheus
fi
if ! python_with_yaml >/dev/null; then
  log "installing python3-yaml"
  apt_install python3-yaml
fi
py=$(python_with_yaml) || { echo "no python3 with PyYAML (apt-get install python3-yaml)" >&2; exit 1; }

log "promtool check config deploy/prometheus/prometheus.yml"
promtool check config deploy/prometheus/prometheus.yml
log "promtool check rules deploy/prometheus/ordermon-alerts.yml"
promtool check rules deploy/prometheus/ordermon-alerts.yml
log "promtool test rules deploy/prometheus/ordermon-alerts.test.yml"
promtool test rules deploy/prometheus/ordermon-alerts.test.yml
if command -v kubectl >/dev/null 2>&1; then
  log "kubectl kustomize deploy/kubernetes"
  kubectl kustomize deploy/kubernetes >/dev/null
  echo "ok: the kustomization renders"
fi
log "check-deploy.py"
"$py" scripts/check-deploy.py
