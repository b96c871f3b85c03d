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

# The native module zmqtt._zmqtt (crates/zmqtt-py), built by maturin and
# installed into the virtualenv as an editable package (python/ is the source).
build_native_module() {
    step "native module zmqtt._zmqtt (maturin develop)"
    VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --locked --quiet
}
