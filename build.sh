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
#   ./build.sh notebooks       pack, then execute notebooks/*.ipynb (a failing cell fails) and save them with outputs
#   ./build.sh docs            the DocFX site (API reference + docs/) into artifacts/docs; any warning fails
set -euo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# A gen0 budget of 64 MiB for every .NET process started from here (tests, samples, the consumer test, notebooks). The
# runtime sizes gen0 from the CPU's cache, and a VM that hides its cache sizes (no /sys/.../cache entries) gets a tiny
# budget: 612 gen0 collections per GB allocated instead of 19. TorchSharp passes implicitly created Scalars whose only
# owner is the finalizer, so a collection during the native call can free one under libtorch ("Expected false to be
# true" from c10::Scalar::toFloat, or silently wrong values); with collections 30x as frequent, test runs hit it.
# docs/setup.md says the same to users. A value already set is kept.
export DOTNET_GCgen0size=${DOTNET_GCgen0size:-0x4000000}
CONFIGURATION=${CONFIGURATION:-Release}

usage() { sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//'; }

prerequisites() { ./eng/install-prerequisites.sh; }

# Both packages (NicheTune, NicheTune.Reporting) with their symbol packages; the folder is emptied first so it holds
# exactly this build's packages.
pack() {
  rm -rf artifacts/packages
  for project in src/NicheTune src/NicheTune.Reporting; do
    dotnet pack "$project" -c Release -o artifacts/packages
  done
}

# The notebooks restore NicheTune from artifacts/packages. A rebuild keeps the version number, and NuGet never refreshes a
# version it has cached, so the cached copies of exactly the versions just packed are removed first.
forget_cached_packages() {
  local cache nupkg name id version
  cache=$(dotnet nuget locals global-packages --list | sed 's/^[^:]*: *//')
  for nupkg in artifacts/packages/*.nupkg; do
    name=$(basename "$nupkg" .nupkg)
    # The id's dot-separated parts never start with a digit; the version's first part does.
    id=$(printf '%s' "$name" | sed -E 's/^([^0-9][^.]*(\.[^0-9][^.]*)*)\.[0-9].*$/\1/')
    version=${name#"$id".}
    rm -rf "$cache/${id,,}/${version,,}"
  done
}

# Each notebook runs in dotnet-repl (a local tool, .config/dotnet-tools.json) from the notebooks folder, so relative
# paths in it resolve the way they do in an editor; dotnet-repl exits non-zero when a cell fails. The executed copy goes to
# artifacts/notebooks and replaces the notebook, so the saved file always carries the outputs of its last clean run.
run_notebooks() {
  local notebook name failed=0
  dotnet tool restore
  forget_cached_packages
  mkdir -p artifacts/notebooks
  for notebook in notebooks/*.ipynb; do
    name=$(basename "$notebook")
    echo "== notebook $name"
    local started=$SECONDS
    # dotnet-repl 0.3 targets .NET 8 or 9; roll forward to the runtime that is installed.
    if ! (cd notebooks && DOTNET_ROLL_FORWARD=Major dotnet tool run dotnet-repl --run "$name" --exit-after-run \
        --output-path "../artifacts/notebooks/$name" > "../artifacts/notebooks/${name%.ipynb}.log" 2>&1); then
      echo "notebook $name failed (a cell raised an error); artifacts/notebooks/$name has the outputs:" >&2
      grep -o '"evalue": "[^"]*' "artifacts/notebooks/$name" 2>/dev/null | head -n 5 >&2 || tail -n 20 "artifacts/notebooks/${name%.ipynb}.log" >&2
      failed=1
      continue
    fi
    echo "   ran in $((SECONDS - started)) s"
    # Drops restore-progress noise, writes the feed as a relative path, and fails without plots or with an error output.
    if dotnet run eng/notebook-outputs.cs -- "artifacts/notebooks/$name" artifacts/packages; then
      cp "artifacts/notebooks/$name" "$notebook"
    else
      failed=1
    fi
  done
  return $failed
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
  docs)
    # DocFX (a local tool) reads the projects' XML docs and docs/*.md. Warnings are errors: a broken link or cref fails.
    # An undocumented public member already fails the compile (CS1591 is an error), which docfx metadata runs first.
    dotnet tool restore
    rm -rf artifacts/docfx artifacts/docs
    # docfx 2.81 targets .NET 8; roll forward to the runtime that is installed.
    DOTNET_ROLL_FORWARD=Major dotnet tool run docfx docfx.json --warningsAsErrors
    ;;
  notebooks)
    prerequisites
    pack
    run_notebooks
    ;;
  -h|--help|help) usage ;;
  *) echo "build.sh: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac
