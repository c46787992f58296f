#!/usr/bin/env bash
# The packages as an application sees them: for each target framework, a brand-new console app in a temporary folder
# (`dotnet new console`) references NicheTune and NicheTune.Reporting from the local feed plus the CPU backend
# libtorch-cpu-linux-x64, gets the program from the package README (src/NicheTune/PACKAGE.md, between the
# CONSUMER-PROGRAM markers) with NicheTune.Reporting's README example added, builds, runs, and must fine-tune: the
# program exits non-zero unless the validation loss dropped, and the HTML report must exist.
#
#   eng/consumer-test.sh FEED [FRAMEWORK...]     FEED: folder with NicheTune.<version>.nupkg (./build.sh pack makes it)
#                                                 FRAMEWORK: net10.0 and net8.0 unless named
#
# net10.0 runs on the machine's shared .NET 10 runtime. net8.0 is published self-contained for linux-x64, so it runs on
# the real .NET 8 runtime (Microsoft.NETCore.App.Runtime.linux-x64 from NuGet) even where only .NET 10 is installed.
#
# Never a stale package: restore uses a fresh packages folder in the temporary folder, so NicheTune always comes from
# FEED; every other package is read from the machine's packages folder through a fallback folder that links all of
# its packages except NicheTune's (nothing big is downloaded twice). The script checks the restored NicheTune is
# and NicheTune.Reporting are byte-identical to FEED's.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: eng/consumer-test.sh FEED [FRAMEWORK...]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
feed=$(cd "$1" && pwd); shift
frameworks=("$@"); [ ${#frameworks[@]} -gt 0 ] || frameworks=(net10.0 net8.0)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "consumer-test: the CPU backend package used here (libtorch-cpu-linux-x64) is for Linux x64 only" >&2; exit 2; }
nupkg=$(ls "$feed"/NicheTune.[0-9]*.nupkg 2>/dev/null | head -n 1)
[ -n "$nupkg" ] || { echo "consumer-test: no NicheTune.<version>.nupkg in $feed (run ./build.sh pack)" >&2; exit 2; }
version=$(basename "$nupkg" .nupkg); version=${version#NicheTune.}
libtorch=$(sed -n 's/.*PackageVersion Include="libtorch-cpu-linux-x64" Version="\([^"]*\)".*/\1/p' "$repo/Directory.Packages.props")

work=$(mktemp -d "${TMPDIR:-/tmp}/nichetune-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
machine_packages=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: *//'); machine_packages=${machine_packages%/}
mkdir -p "$work/packages" "$work/fallback"
if [ -d "$machine_packages" ]; then
  for dir in "$machine_packages"/*/; do
    id=$(basename "$dir")
    case "$id" in nichetune|nichetune.*) continue ;; esac
    ln -s "${dir%/}" "$work/fallback/$id"
  done
fi
# Sources: this feed plus whatever the machine's NuGet configuration lists (the user-level file is merged in).
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config>
    <add key="globalPackagesFolder" value="$work/packages" />
  </config>
  <packageSources>
    <add key="nichetune-local" value="$feed" />
  </packageSources>
  <fallbackPackageFolders>
    <add key="machine" value="$work/fallback" />
  </fallbackPackageFolders>
</configuration>
XML

# NicheTune.Reporting's README example (the lines after its "using", minus comments) runs after the fine-tune and
# must write an HTML report.
report_lines=$(sed -n '/^```csharp$/,/^```$/p' "$repo/src/NicheTune.Reporting/PACKAGE.md" | grep -v -e '^```' -e '^using ' -e '^//' -e '^$')
[ -n "$report_lines" ] || { echo "consumer-test: no example in src/NicheTune.Reporting/PACKAGE.md" >&2; exit 2; }
program=$(sed -n '/<!-- CONSUMER-PROGRAM-BEGIN -->/,/<!-- CONSUMER-PROGRAM-END -->/p' "$repo/src/NicheTune/PACKAGE.md" | sed '1,/^```csharp$/d' | sed '/^```$/,$d')
[ -n "$program" ] || { echo "consumer-test: no program between the CONSUMER-PROGRAM markers in src/NicheTune/PACKAGE.md" >&2; exit 2; }

consume() {
  local tfm=$1 app=$2
  cd "$app"
  # The SDK's console template offers only its own framework (net10.0); an app for an older one is retargeted after.
  dotnet new console -n Consumer -o . > new.log
  sed -i "s|<TargetFramework>[^<]*</TargetFramework>|<TargetFramework>$tfm</TargetFramework>|" Consumer.csproj
  grep -q "<TargetFramework>$tfm</TargetFramework>" Consumer.csproj
  dotnet add package NicheTune --version "$version" > add.log
  dotnet add package libtorch-cpu-linux-x64 --version "$libtorch" >> add.log
  dotnet add package NicheTune.Reporting --version "$version" >> add.log
  # The README program, with the Reporting example inserted before its final return.
  { echo "using NicheTune.Reporting;"; printf '%s\n' "$program" | sed '$d'; printf '%s\n' "$report_lines"; printf '%s\n' "$program" | tail -n 1; } > Program.cs
  for id in NicheTune NicheTune.Reporting; do
    lower=${id,,}
    cmp -s "$work/packages/$lower/$version/$lower.$version.nupkg" "$feed/$id.$version.nupkg" \
      || { echo "the restored $id $version is not the one in $feed" >&2; return 1; }
  done
  if [ "$tfm" = net8.0 ]; then
    # Self-contained: the .NET 8 runtime travels with the app (the machine may have only .NET 10).
    dotnet publish -c Release -r linux-x64 --self-contained -o out > build.log || { tail -n 30 build.log; return 1; }
    grep -q '"version": "8\.' out/Consumer.runtimeconfig.json || { echo "the published app does not carry a .NET 8 runtime" >&2; return 1; }
    ./out/Consumer
    grep -q "<html" report.html || { echo "no HTML report written" >&2; return 1; }
  else
    dotnet build -c Release > build.log || { tail -n 30 build.log; return 1; }
    dotnet "bin/Release/$tfm/Consumer.dll"
    grep -q "<html" report.html || { echo "no HTML report written" >&2; return 1; }
  fi
}

status=0
for tfm in "${frameworks[@]}"; do
  app="$work/${tfm//./}/Consumer"
  mkdir -p "$app"
  echo "== consumer-test $tfm: NicheTune $version + libtorch-cpu-linux-x64 $libtorch in $app"
  start=$SECONDS
  # A plain subshell (not part of an && list), so set -e stops it at the first failing step.
  set +e
  (set -e; consume "$tfm" "$app")
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    echo "== consumer-test $tfm: passed in $((SECONDS - start)) s"
  else
    echo "== consumer-test $tfm: FAILED (exit $rc)" >&2
    status=1
  fi
done
exit $status
