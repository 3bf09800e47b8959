# Shared by scripts/demo and scripts/test: Debian packages when root, then the venv.
# shellcheck shell=bash

# apt_install PKG...: install the Debian packages that are missing (root only).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or install them, first)" >&2
    return 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  INSTALLED_NOW+=("${missing[@]}")
}

# stop_new_services SVC...: services that apt_install just installed and Debian started
# would only hold ports (and CPU); the tests and benchmarks run their own instances.
stop_new_services() {
  for svc in "$@"; do
    if [[ " ${INSTALLED_NOW[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null \
       && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl disable --now "$svc" || true
    fi
  done
}

# make_venv EXTRAS: create .venv (or $AJPB_VENV) and install the project into it, as a
# user would (a built wheel, so twistd finds the plugin in site-packages). The wheel is
# built once (the native build compiles for about a minute), put in place over whatever
# was installed, then its extras' dependencies are added.
make_venv() {
  VENV=${AJPB_VENV:-.venv}
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  local wheels
  wheels=$(mktemp -d)
  "$VENV/bin/python" -m pip wheel -q --no-deps -w "$wheels" .
  local wheel=("$wheels"/ajpbalancer-*.whl)
  "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "${wheel[0]}"
  "$VENV/bin/python" -m pip install -q "${wheel[0]}$1"
  rm -rf "$wheels"
}

# remove_native_build: the modules `setup.py build_ext --inplace` compiled into the
# checkout (they would shadow the .py files they were built from).
remove_native_build() {
  find ajpbalancer -name '*.so' -delete
  rm -f ./*__mypyc*.so
}

INSTALLED_NOW=()
