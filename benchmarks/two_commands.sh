#!/bin/sh
# Time README's two commands the way a new user meets them: a clean clone of this
# repository's HEAD, one fresh virtual environment, an empty numba cache.
#
#   sh benchmarks/two_commands.sh            # prints one line of wall times, in seconds
#
# It runs, in order: command 1 (`pip install .`, then `refimpl tutorials` cold and warm,
# then `refimpl tutorials --fast` cold and warm), and command 2 (`pip install -e
# ".[test]"`, then the suite cold and warm). "Cold" means an empty refimpl cache folder
# (REFIMPL_CACHE_DIR points into the scratch folder, so your own cache is never touched).
# Everything happens in a scratch folder from mktemp, which is removed at the end; nothing
# outside it is written or deleted. Run it on an otherwise idle machine: the times are only
# as quiet as the machine.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/refimpl-two-commands.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
git clone -q "$here" "$scratch/repo"
python3 -m venv "$scratch/venv"
. "$scratch/venv/bin/activate"
export REFIMPL_CACHE_DIR="$scratch/cache"
cd "$scratch/repo"

now() { python3 -c 'import time; print(time.monotonic())'; }
since() { python3 -c "import sys, time; print(f'{time.monotonic() - float(sys.argv[1]):.1f}')" "$1"; }
cold() { rm -rf "$REFIMPL_CACHE_DIR"; }

t=$(now); python3 -m pip install -q . >"$scratch/log" 2>&1; install1=$(since "$t")
cold; t=$(now); refimpl tutorials >>"$scratch/log" 2>&1; tut_cold=$(since "$t")
t=$(now); refimpl tutorials >>"$scratch/log" 2>&1; tut_warm=$(since "$t")
cold; t=$(now); refimpl tutorials --fast >>"$scratch/log" 2>&1; fast_cold=$(since "$t")
t=$(now); refimpl tutorials --fast >>"$scratch/log" 2>&1; fast_warm=$(since "$t")
t=$(now); python3 -m pip install -q -e ".[test]" >>"$scratch/log" 2>&1; install2=$(since "$t")
cold; t=$(now); python3 -m pytest -q -p no:cacheprovider >"$scratch/suite" 2>&1 || true; suite_cold=$(since "$t")
t=$(now); python3 -m pytest -q -p no:cacheprovider >"$scratch/suite" 2>&1 || true; suite_warm=$(since "$t")

echo "command 1: install ${install1} s; tutorials ${tut_cold} s cold, ${tut_warm} s warm;" \
     "--fast ${fast_cold} s cold, ${fast_warm} s warm"
echo "command 2: install ${install2} s; suite ${suite_cold} s cold, ${suite_warm} s warm:" \
     "$(tail -n 1 "$scratch/suite")"
