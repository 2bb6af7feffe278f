#!/usr/bin/env bash
# Builds atflow's `tensorflow` backend: tfjs-node's native addon compiled against the TensorFlow C library
# that ships inside a pip TensorFlow wheel. For machines where tfjs-node's own libtensorflow download
# (2.9.1, CUDA 11.2) cannot run: air-gapped clusters, pip mirrors, GPU boxes with a newer CUDA.
#
#   npx atflow setup-tensorflow              # tensorflow-cpu wheel -> @tensorflow/tfjs-node
#   npx atflow setup-tensorflow --gpu        # tensorflow (CUDA) wheel -> @tensorflow/tfjs-node-gpu
#   npx atflow setup-tensorflow --check      # exit 0 only if setup can run here (tools + wheel reachable)
#   bash scripts/setup-tensorflow.sh [--project DIR] [--gpu] [--check] [--force]   # what the CLI runs
# (in a clone also `npm run setup:tensorflow [-- --gpu]`, which is the CLI command)
#
# The package goes into DIR/node_modules, DIR being the project whose node_modules holds the
# @tensorflow/tfjs atflow loads (the CLI passes it; default: this clone): a project that depends on atflow,
# or this clone. There it shares that one tfjs, npm counts it as atflow's optional dependency (so the
# project's next `npm install` keeps it), and none of atflow's dev dependencies are installed. `npm ci`
# deletes it; the CLI records each build in the cache (tensorflow/projects/), so that atflow then says at
# start-up that it is gone and how to rebuild it.
#
# Steps: (1) pip downloads the wheel (--no-deps --retries 0); (2) the C libraries (stripped) and the C API
# headers are extracted into a cache; (3) the tfjs-node package is installed without its install script
# when `npm ci` dropped it (its libtensorflow download fails here, so npm removes the optional package);
# (4) the libraries are placed in the package's deps/ under the names tfjs-node expects, with a
# custom-binary.json so that its install script builds the addon from source instead of downloading;
# (5) tfjs-node's own scripts/install.js runs node-pre-gyp/node-gyp; (6) the result is loaded once and
# its TensorFlow version printed, and a copy of it kept in the cache for the next project or the next
# `npm ci`. Idempotent: a second run finds everything in place and only re-checks.
#
# Environment:
#   TF_PIP_SPEC         pip requirement of the wheel (default tensorflow-cpu==2.21.0; with --gpu tensorflow==2.21.0)
#   TFJS_NODE_PACKAGE   @tensorflow/tfjs-node (default) or @tensorflow/tfjs-node-gpu (same as --gpu)
#   ATFLOW_CACHE_DIR    cache root (default ${XDG_CACHE_HOME:-~/.cache}/atflow); wheels are extracted under tensorflow/
#   ATFLOW_PIP_TIMEOUT  pip's socket timeout in seconds (default 15)
#   PIP                 pip command (default: python3 -m pip)
set -euo pipefail

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; }

MODE=setup
FORCE=0
GPU=0
PROJECT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) MODE=check ;;
    --force) FORCE=1 ;;
    --gpu) GPU=1 ;;
    --project)
      [ $# -ge 2 ] || { echo "setup-tensorflow: --project needs a directory" >&2; exit 64; }
      PROJECT="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup-tensorflow: unknown option '$1' (expected --check, --gpu, --force, --project DIR, --help)" >&2; exit 64 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "$PROJECT" ]; then
  # Run by hand from an installed copy (node_modules/atflow/scripts/...): building here would install
  # atflow's dev dependencies and a second tfjs inside node_modules/atflow. The CLI knows the project.
  case "$ROOT" in
    */node_modules/*) echo "setup-tensorflow: run \`npx atflow setup-tensorflow\` in your project instead (it builds the backend next to the project's @tensorflow/tfjs)" >&2; exit 64 ;;
  esac
  PROJECT="$ROOT"
fi
[ -d "$PROJECT" ] || { echo "setup-tensorflow: --project $PROJECT is not a directory" >&2; exit 64; }
PROJECT="$(cd "$PROJECT" && pwd -P)"
PKG="${TFJS_NODE_PACKAGE:-}"
if [ -z "$PKG" ]; then
  if [ "$GPU" = 1 ]; then PKG=@tensorflow/tfjs-node-gpu; else PKG=@tensorflow/tfjs-node; fi
fi
case "$PKG" in
  @tensorflow/tfjs-node) LIBTYPE=cpu; OTHER_PKG=@tensorflow/tfjs-node-gpu ;;
  @tensorflow/tfjs-node-gpu) LIBTYPE=gpu; OTHER_PKG=@tensorflow/tfjs-node ;;
  *) echo "setup-tensorflow: TFJS_NODE_PACKAGE='$PKG': expected @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu" >&2; exit 64 ;;
esac
if [ "$LIBTYPE" = gpu ]; then DEFAULT_SPEC='tensorflow==2.21.0'; else DEFAULT_SPEC='tensorflow-cpu==2.21.0'; fi
SPEC="${TF_PIP_SPEC:-$DEFAULT_SPEC}"
CACHE="${ATFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/atflow}/tensorflow"
PIP_TIMEOUT="${ATFLOW_PIP_TIMEOUT:-15}"
PKG_DIR="$PROJECT/node_modules/$PKG"
SPEC_KEY="$(printf '%s' "$SPEC" | tr -c 'A-Za-z0-9._=-' '_')"

log() { echo "setup-tensorflow: $*" >&2; }
die() { log "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
# pip must never wait on an unreachable index, and nothing here may hang: bound every network step.
bounded() { if have timeout; then timeout "$@"; else shift; "$@"; fi; }

PIP_CMD=()
find_pip() {
  if [ -n "${PIP:-}" ]; then read -r -a PIP_CMD <<<"$PIP"; "${PIP_CMD[@]}" --version >/dev/null 2>&1 && return 0; fi
  if have python3 && python3 -m pip --version >/dev/null 2>&1; then PIP_CMD=(python3 -m pip); return 0; fi
  PIP_CMD=()
  return 1
}

# Every tool the build needs, each with what to do about it. Prints one line per missing tool.
missing_tools() {
  local out=0
  have node || { echo "node is missing (Node >= 20.19: https://nodejs.org)"; out=1; }
  have npm || { echo "npm is missing (it comes with Node)"; out=1; }
  have python3 || { echo "python3 is missing (node-gyp and pip need Python 3: apt-get install python3)"; out=1; }
  have g++ || have c++ || { echo "g++ is missing (the addon is C++: apt-get install g++ make, or dnf install gcc-c++ make)"; out=1; }
  have make || { echo "make is missing (node-gyp drives make: apt-get install make)"; out=1; }
  return $out
}

staged_dir_for_spec() {
  local f="$CACHE/specs/$SPEC_KEY" stem
  [ -f "$f" ] || return 1
  stem="$(cat "$f")"
  [ -n "$stem" ] && [ -f "$CACHE/staged/$stem/.complete" ] || return 1
  echo "$CACHE/staged/$stem"
}

# ---------------------------------------------------------------------------------------------------
if [ "$MODE" = check ]; then
  if ! problems="$(missing_tools)"; then
    printf '%s\n' "$problems" | while read -r line; do log "$line"; done
    exit 1
  fi
  if dir="$(staged_dir_for_spec)"; then
    log "ready: $SPEC is extracted in $dir"
    exit 0
  fi
  find_pip || { log "pip is missing (python3 -m pip): cannot fetch $SPEC"; exit 1; }
  report="$(mktemp)"
  # A dry-run resolve: reads the index (and, for indexes without metadata files, the wheel) but installs nothing.
  if bounded 120 "${PIP_CMD[@]}" install --dry-run --no-deps --ignore-installed --only-binary=:all: \
    --retries 0 --timeout "$PIP_TIMEOUT" --disable-pip-version-check --quiet --report "$report" "$SPEC" >/dev/null 2>&1; then
    url="$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))["install"][0]; print(i["download_info"]["url"])' "$report" 2>/dev/null || true)"
    rm -f "$report"
    log "ready: $SPEC is reachable through pip${url:+ ($url)}"
    exit 0
  fi
  rm -f "$report"
  log "no wheel for '$SPEC' is reachable through pip (indexes: \`pip config list\`); set TF_PIP_SPEC or configure a mirror"
  exit 3
fi

# ---------------------------------------------------------------------------------------------------
T0="$(now)"
if ! problems="$(missing_tools)"; then
  printf '%s\n' "$problems" | while read -r line; do log "$line"; done
  die "missing prerequisites (above); nothing was changed"
fi
[ -f "$PROJECT/package.json" ] && [ -d "$PROJECT/node_modules" ] || die "$PROJECT has no package.json and node_modules: run \`npm install\` there first"
mkdir -p "$CACHE/staged" "$CACHE/specs"

# One setup at a time per cache (CI and a developer shell may overlap).
if have flock; then
  exec 9>"$CACHE/.lock"
  flock -w 900 9 || die "another setup-tensorflow holds $CACHE/.lock for more than 15 minutes"
fi

# (1)+(2) The wheel's C library, extracted once per TF_PIP_SPEC.
T="$(now)"
if STAGED="$(staged_dir_for_spec)" && [ "$FORCE" = 0 ]; then
  log "using cached TensorFlow $(cat "$STAGED/VERSION") from $STAGED"
else
  find_pip || die "pip is missing (python3 -m pip): it fetches the TensorFlow wheel ($SPEC); install python3-pip"
  DL="$(mktemp -d "$CACHE/download.XXXXXX")"
  trap 'rm -rf "$DL"' EXIT
  log "downloading $SPEC with pip (no dependencies, no retries) ..."
  if ! bounded 1800 "${PIP_CMD[@]}" download --no-deps --only-binary=:all: --retries 0 --timeout "$PIP_TIMEOUT" \
    --disable-pip-version-check --progress-bar off -d "$DL" "$SPEC" >"$DL/pip.log" 2>&1; then
    sed 's/^/  pip: /' "$DL/pip.log" | tail -n 5 >&2
    log "no wheel for '$SPEC' is reachable through pip (indexes: \`pip config list\`)."
    log "The tensorflow backend was not built; atflow will use wasm. To build it, make a TensorFlow wheel"
    log "reachable (a pip mirror, or TF_PIP_SPEC=/path/to/tensorflow_cpu-*.whl) and run this again."
    exit 0
  fi
  WHEEL="$(find "$DL" -maxdepth 1 -name '*.whl' | head -n 1)"
  [ -n "$WHEEL" ] || die "pip reported success but left no wheel in $DL (see $DL/pip.log)"
  STEM="$(basename "$WHEEL" .whl)"
  log "downloaded $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1)) in $(since "$T"); extracting ..."
  T="$(now)"
  TMP_STAGE="$CACHE/staged/.tmp-$STEM-$$"
  rm -rf "$TMP_STAGE"
  python3 "$ROOT/scripts/lib/extract-tensorflow-wheel.py" "$WHEEL" "$TMP_STAGE" >&2 || die "could not extract $WHEEL"
  if have strip; then
    # Debug symbols are ~20% of the library; the dynamic symbol table the addon links against stays.
    strip "$TMP_STAGE"/lib/*.so.2 || die "strip failed on $TMP_STAGE/lib"
  else
    log "note: 'strip' (binutils) is missing; keeping unstripped libraries (~200 MB more)"
  fi
  touch "$TMP_STAGE/.complete"
  rm -rf "$CACHE/staged/$STEM"
  mv "$TMP_STAGE" "$CACHE/staged/$STEM"
  printf '%s\n' "$STEM" >"$CACHE/specs/$SPEC_KEY.tmp" && mv "$CACHE/specs/$SPEC_KEY.tmp" "$CACHE/specs/$SPEC_KEY"
  STAGED="$CACHE/staged/$STEM"
  rm -rf "$DL"
  trap - EXIT
  log "extracted TensorFlow $(cat "$STAGED/VERSION") to $STAGED ($(du -sh "$STAGED" | cut -f1)) in $(since "$T")"
fi
TF_VERSION="$(cat "$STAGED/VERSION")"
STAGE_ID="$(basename "$STAGED")"

# (3) The npm package. `npm ci` removes it (its install script fails where libtensorflow cannot be
# downloaded), so fetch it again without running that script.
T="$(now)"
if [ ! -f "$PKG_DIR/package.json" ] || [ ! -d "$PROJECT/node_modules/@mapbox/node-pre-gyp" ]; then
  VERSION_RANGE="$(node -e '
    const p = require(process.argv[1]); const n = process.argv[2];
    const v = (p.optionalDependencies || {})[n] || (p.dependencies || {})[n] || "4.22.0";
    process.stdout.write(v.replace(/^[\^~=]/, ""));' "$ROOT/package.json" "$PKG")"
  log "installing $PKG@$VERSION_RANGE without its install script ..."
  (cd "$PROJECT" && bounded 600 npm install --no-save --ignore-scripts --no-audit --no-fund "$PKG@$VERSION_RANGE" >&2) ||
    die "npm could not install $PKG@$VERSION_RANGE (is the npm registry or a mirror reachable?)"
  log "installed $PKG in $(since "$T")"
fi
[ -f "$PKG_DIR/scripts/install.js" ] || die "$PKG_DIR/scripts/install.js is missing: unexpected $PKG layout"
# An installed but unbuilt twin package would register its kernels and then fail when atflow tries it
# first; leave it only if it has a built addon.
OTHER_DIR="$PROJECT/node_modules/$OTHER_PKG"
if [ -d "$OTHER_DIR" ] && ! compgen -G "$OTHER_DIR/lib/napi-v*/tfjs_binding.node" >/dev/null; then
  rm -rf "$OTHER_DIR"
fi

smoke_test() {
  # Loads the addon and prints the TensorFlow C library version it runs on.
  (cd "$PROJECT" && TF_CPP_MIN_LOG_LEVEL=2 node -e '
    const tf = require(process.argv[1]);
    const y = tf.tidy(() => tf.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([3, 3, 1, 1]), 1, "same").sum().dataSync()[0]);
    if (y !== 100) { console.error("conv2d smoke test gave " + y + ", expected 100 (4 corners x 4 + 8 edges x 6 + 4 inner x 9)"); process.exit(1); }
    process.stdout.write(String(tf.backend().binding.TF_Version));' "$PKG" 2>"$CACHE/smoke.log")
}

# Where a compiled addon is kept for reuse (step 5).
PKG_VERSION="$(node -p 'require(process.argv[1]).version' "$PKG_DIR/package.json")"
ADDON_CACHE="$CACHE/addons/$STAGE_ID/$(basename "$PKG")-$PKG_VERSION-$(uname -m)"
keep_addon() {
  [ -f "$ADDON_CACHE/.complete" ] && return 0
  rm -rf "$ADDON_CACHE.tmp.$$" && mkdir -p "$ADDON_CACHE.tmp.$$" && cp -a "$PKG_DIR/lib" "$ADDON_CACHE.tmp.$$/lib" &&
    touch "$ADDON_CACHE.tmp.$$/.complete" && rm -rf "$ADDON_CACHE" && mv "$ADDON_CACHE.tmp.$$" "$ADDON_CACHE" ||
    log "note: could not keep a copy of the addon in $ADDON_CACHE (the next setup compiles again)"
}

if [ "$FORCE" = 0 ] && [ "$(cat "$PKG_DIR/deps/.atflow-staged" 2>/dev/null || true)" = "$STAGE_ID" ] &&
  compgen -G "$PKG_DIR/lib/napi-v*/tfjs_binding.node" >/dev/null && LOADED="$(smoke_test)"; then
  keep_addon
  log "already set up: $PKG runs on TensorFlow $LOADED (from $STAGE_ID); --force rebuilds"
  exit 0
fi

# (4) deps/ as tfjs-node's install script expects it. Hard links to the cache cost no disk space.
T="$(now)"
rm -rf "$PKG_DIR/deps" "$PKG_DIR/lib" "$PKG_DIR/build"
mkdir -p "$PKG_DIR/deps"
for d in lib include; do
  cp -al "$STAGED/$d" "$PKG_DIR/deps/$d" 2>/dev/null || cp -a "$STAGED/$d" "$PKG_DIR/deps/$d"
done
(
  cd "$PKG_DIR/deps/lib"
  # libtensorflow.so.2.9.1 is the name whose presence makes install.js skip its download.
  for n in libtensorflow.so libtensorflow.so.2 libtensorflow.so.2.9.1; do ln -sfn libtensorflow_cc.so.2 "$n"; done
  for n in libtensorflow_framework.so libtensorflow_framework.so.2.9.1; do ln -sfn libtensorflow_framework.so.2 "$n"; done
)
# A `tf-lib` entry makes install.js build the addon from source rather than fetch the prebuilt one
# (which is linked against libtensorflow 2.9.1). Its value is only a record of where the library came from.
printf '{\n  "tf-lib": "pip wheel %s (%s), staged by atflow scripts/setup-tensorflow.sh"\n}\n' "$STAGE_ID" "$SPEC" \
  >"$PKG_DIR/scripts/custom-binary.json"

# (5) Compile with tfjs-node's own install script (node-pre-gyp install --build-from-source), unless this
# package version was compiled against this wheel before: the addon is a Node-API module (no Node ABI in
# it) that finds libtensorflow through RUNPATH $ORIGIN/../../deps/lib, so the copy kept in the cache works
# in any project, and rebuilding after `npm ci` takes seconds. A copy that fails the smoke test is compiled anew.
if [ "$FORCE" = 0 ] && [ -f "$ADDON_CACHE/.complete" ]; then
  cp -a "$ADDON_CACHE/lib" "$PKG_DIR/lib"
  if LOADED="$(smoke_test)"; then
    echo "$STAGE_ID" >"$PKG_DIR/deps/.atflow-staged"
    log "done: $PKG runs on TensorFlow $LOADED (the addon compiled earlier, from $ADDON_CACHE) in $(since "$T0")"
    exit 0
  fi
  log "the addon in $ADDON_CACHE does not load here; compiling it again"
  rm -rf "$PKG_DIR/lib" "$ADDON_CACHE"
fi
NODEDIR="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
case "$NODEDIR" in undefined | null) NODEDIR="" ;; esac
if [ -z "$NODEDIR" ]; then
  NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  # Node's own headers, when installed, spare node-gyp a download from nodejs.org.
  [ -f "$NODE_PREFIX/include/node/common.gypi" ] && NODEDIR="$NODE_PREFIX"
fi
log "compiling the $PKG addon against TensorFlow $TF_VERSION ..."
BUILD_LOG="$CACHE/build-$LIBTYPE.log"
BUILD_ENV=("PATH=$PROJECT/node_modules/.bin:$PATH")
[ -n "$NODEDIR" ] && BUILD_ENV+=("npm_config_nodedir=$NODEDIR")
if ! (cd "$PKG_DIR" && bounded 1200 env "${BUILD_ENV[@]}" node scripts/install.js "$LIBTYPE") >"$BUILD_LOG" 2>&1 ||
  ! compgen -G "$PKG_DIR/lib/napi-v*/tfjs_binding.node" >/dev/null; then
  grep -E 'error|ERR!' "$BUILD_LOG" | grep -v 'gyp ERR! stack' | head -n 15 >&2 || true
  die "building the addon failed; full log: $BUILD_LOG"
fi
log "compiled in $(since "$T")"

# (6) Load it once.
if ! LOADED="$(smoke_test)"; then
  sed 's/^/  node: /' "$CACHE/smoke.log" | tail -n 8 >&2
  die "the built addon does not load (log above)"
fi
echo "$STAGE_ID" >"$PKG_DIR/deps/.atflow-staged"
rm -rf "$ADDON_CACHE"
keep_addon
log "done: $PKG runs on TensorFlow $LOADED ($(du -sh "$PKG_DIR/deps/lib" | cut -f1) of libraries, hard-linked from the cache) in $(since "$T0")"
log "use it: ATFLOW_BACKEND=tensorflow (atflow picks it first anyway when it is built)"
