# Shared setup for scripts/test and scripts/demo (sourced, not run).
VENV="${VENV:-$PWD/.venv}"

step() { printf '\n==> %s\n' "$*"; }

# mosquitto (+ clients) and openssl from Debian's packages, when missing.
setup_system_packages() {
    step "system packages"
    python3 scripts/testbroker.py install
}

# A private virtualenv with the Python tools the checks use (requirements-dev.txt).
setup_python_env() {
    step "python virtualenv ($VENV)"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
}
