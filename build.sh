#!/usr/bin/env bash
# NicheTune's one entry point. Every command first makes sure the machine can run libtorch
# (eng/install-prerequisites.sh: idempotent, a no-op when nothing is missing), then restores and builds.
#
#   ./build.sh test            build everything and run the tests
#   ./build.sh quickstart      run the QuickStart sample: a small fine-tune on real FOLDOC text
#   ./build.sh sample NAME     run samples/NAME (extra arguments are passed on, e.g. --smoke)
#   ./build.sh samples-smoke   run every sample with --smoke (a few steps each; what CI runs after the tests)
#   ./build.sh bench [filter]  run the BenchmarkDotNet suite (optionally filtered)
#   ./build.sh bench-guard     the hot loop's guard: trainer overhead ratio and RSS growth; fails above limits
#   ./build.sh pack            build the NuGet packages (NicheTune, NicheTune.Reporting, .snupkg) into artifacts/packages
#   ./build.sh consumer-test   pack, then build and run new net10.0 and net8.0 console apps that use the packages
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
CONFIGURATION=${CONFIGURATION:-Release}

usage() { sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//'; }

prerequisites() { ./eng/install-prerequisites.sh; }

# Both packages (NicheTune, NicheTune.Reporting) with their symbol packages; the folder is emptied first so it holds
# exactly this build's packages.
pack() {
  rm -rf artifacts/packages
  for project in src/NicheTune src/NicheTune.Reporting; do
    dotnet pack "$project" -c Release -o artifacts/packages
  done
}

run_sample() {
  local name=$1; shift
  [ -d "samples/$name" ] || { echo "build.sh: no sample 'samples/$name'" >&2; exit 2; }
  dotnet run --project "samples/$name" -c "$CONFIGURATION" -- "$@"
}

cmd=${1:-}
[ -n "$cmd" ] || { usage; exit 2; }
shift
case "$cmd" in
  test)
    prerequisites
    dotnet build NicheTune.sln -c "$CONFIGURATION"
    rm -rf artifacts/test-results
    dotnet test tests/NicheTune.Tests -c "$CONFIGURATION" --no-build \
      --logger "trx;LogFileName=tests.trx" --results-directory artifacts/test-results "$@"
    ;;
  quickstart)
    prerequisites
    run_sample QuickStart "$@"
    ;;
  sample)
    prerequisites
    [ $# -ge 1 ] || { echo "build.sh sample NAME [args]" >&2; exit 2; }
    run_sample "$@"
    ;;
  samples-smoke)
    prerequisites
    for dir in samples/*/; do
      name=$(basename "$dir")
      [ -f "$dir/$name.csproj" ] || continue
      echo "== sample $name --smoke"
      # Smoke runs use a throw-away cache, so CI never reuses (or fills) a developer's base-model cache.
      NICHETUNE_CACHE=${NICHETUNE_CACHE:-$(mktemp -d)} run_sample "$name" --smoke
    done
    ;;
  bench)
    prerequisites
    dotnet run --project benchmarks/NicheTune.Benchmarks -c Release -- --filter "${1:-*}" "${@:2}"
    ;;
  bench-guard)
    prerequisites
    dotnet run --project benchmarks/NicheTune.Benchmarks -c Release -- guard "$@"
    ;;
  pack)
    prerequisites
    pack
    ;;
  consumer-test)
    prerequisites
    pack
    ./eng/consumer-test.sh artifacts/packages
    ;;
  -h|--help|help) usage ;;
  *) echo "build.sh: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac
