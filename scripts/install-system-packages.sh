#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Kiln needs, only if something is missing.
#   --test-tools      also what the tests outside `swift test` use (CI): a real Slurm (slurm-wlm, munge);
#                     g++, valgrind and python3-venv for scripts/check-embedding.sh; a headless browser
#                     and its WebDriver (chromium, chromium-driver) for the `kiln serve` client tests.
#   --mesa-backports  on Debian 12, lavapipe from bookworm-backports (Mesa 25) instead of bookworm's
#                     Mesa 22.3.6, adding that source if it is missing. Other systems ignore it.
#                     BENCHMARKS.md, "Vulkan driver on Debian 12", says what it gains and costs.
#   --dry-run         change nothing: apt reads its lists into a temporary folder and only
#                     simulates (apt-get -s) what it would install.
set -euo pipefail
test_tools=false; mesa_backports=false; dry_run=false
for argument in "$@"; do
    case "$argument" in
        --test-tools) test_tools=true ;;
        --mesa-backports) mesa_backports=true ;;
        --dry-run) dry_run=true ;;
        *) echo "usage: $0 [--test-tools] [--mesa-backports] [--dry-run]" >&2; exit 2 ;;
    esac
done
packages=(libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers glslang-dev spirv-tools libpng-dev pkg-config)
if $test_tools; then
    packages+=(slurm-wlm munge)
    # scripts/check-embedding.sh: the C++ header check, valgrind, and a venv for the Python tests.
    packages+=(g++ valgrind python3-venv)
    packages+=(chromium chromium-driver)
fi

debian12=false
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ] && debian12=true
fi
backports=false
$mesa_backports && $debian12 && backports=true

sudo_prefix=""
[ "$(id -u)" -ne 0 ] && ! $dry_run && sudo_prefix="sudo"
apt_options=()
if $dry_run; then
    # A private copy of the sources and lists, so even `apt-get update` leaves the system alone.
    scratch="$(mktemp -d)"
    chmod 755 "$scratch"  # apt downloads as the _apt user
    trap 'rm -rf "$scratch"' EXIT
    mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/sources.list.d"
    cp /etc/apt/sources.list.d/* "$scratch/sources.list.d/" 2>/dev/null || true
    apt_options=(-o "Dir::Etc::SourceParts=$scratch/sources.list.d" -o "Dir::State::Lists=$scratch/lists" -o "Dir::Cache=$scratch/cache" -s)
    sources_parts="$scratch/sources.list.d"
else
    sources_parts=/etc/apt/sources.list.d
fi
apt() {
    if $dry_run; then echo "+ apt-get ${*}" >&2; fi
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get "${apt_options[@]}" "$@"
}

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# Backports' lavapipe is wanted but bookworm's (or none) is there.
backported_mesa=true
$backports && ! dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '~bpo12' && backported_mesa=false

if [ ${#missing[@]} -gt 0 ] || ! $backported_mesa; then
    if $backports && ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list "$sources_parts"; then
        line="deb http://deb.debian.org/debian bookworm-backports main"
        if $dry_run; then
            echo "+ would write $line to /etc/apt/sources.list.d/bookworm-backports.list" >&2
            echo "$line" > "$sources_parts/bookworm-backports.list"
        else
            echo "$line" | $sudo_prefix tee /etc/apt/sources.list.d/bookworm-backports.list > /dev/null
        fi
    fi
    # A dry run reads its lists into the scratch folder, which apt-get -s does not fill.
    if $dry_run; then
        apt-get -o "Dir::Etc::SourceParts=$sources_parts" -o "Dir::State::Lists=$scratch/lists" -o "Dir::Cache=$scratch/cache" update -qq
    else
        apt update -qq
    fi
    [ ${#missing[@]} -gt 0 ] && apt install -y -qq --no-install-recommends "${missing[@]}"
    # Backports' Mesa also moves the other Mesa libraries (libgl1-mesa-dri, libegl-mesa0, ...) and
    # libdrm to backports' versions, which apt does by itself: they share one mesa-libgallium.
    $backports && ! $backported_mesa && apt install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers
fi
exit 0
