#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian-like machine and runs it:
# Debian packages (as root, or through sudo), a virtual environment with seaway and its
# test dependencies, then lint, type checks and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(curl haproxy nftables iproute2 procps chromium wrk nginx-light libnginx-mod-stream nghttp2-client)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "installing Debian packages: ${missing[*]}"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/seaway-apt.log 2>&1; then
    echo "warning: could not install ${missing[*]} (see /tmp/seaway-apt.log); tests that need them will skip"
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,bench]'

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
code=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
exit $code
