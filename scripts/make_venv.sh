#!/usr/bin/env bash
# Create the project's Python 3.10 virtual environment from nothing: lava-nc 0.10 / lava-dl 0.6 support 3.10 only.
set -euo pipefail
venv=${1:-.venv}

find_python310() {
  local candidate
  for candidate in python3.10 "$(command -v pyenv >/dev/null 2>&1 && pyenv root)"/versions/3.10*/bin/python3.10 \
                   /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

py=$(find_python310) || { echo "error: Python 3.10 not found (lava-nc 0.10 needs it); install python3.10" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
# One resolve of exact pins: installing packages one by one lets pip lift numpy to 2.x, which lava does not support.
"$venv/bin/python" -m pip install -q -r requirements.lock
"$venv/bin/python" -m pip install -q --no-deps -e .
