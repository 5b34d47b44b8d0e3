#!/usr/bin/env bash
# Installs what wisp's tests and examples need on a fresh Debian 12 machine.
set -euo pipefail
pkgs=(gcc make python3 libpython3.11 python3-flask python3-django python3-pastedeploy python3-paste
      python3-webob python3-pytest python3-venv wrk curl systemd
      chromium chromium-driver python3-selenium python3-wsproto lintian
      python3-fastapi python3-starlette python3-uvloop python3-httptools python3-uvicorn
      python3-quart python3-django-channels)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v go >/dev/null || { echo "deps: Go 1.26 is required (https://go.dev/dl)"; exit 1; }
