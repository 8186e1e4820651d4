#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Kiln needs, only if something is missing.
#   --test-tools  also what the tests outside `swift test` use (CI): a real Slurm (slurm-wlm, munge);
#                 g++, valgrind and python3-venv for scripts/check-embedding.sh; a headless browser
#                 and its WebDriver (chromium, chromium-driver) for the `kiln serve` client tests.
set -euo pipefail
packages=(libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers glslang-dev spirv-tools libpng-dev pkg-config)
if [ "${1:-}" = "--test-tools" ]; then
    packages+=(slurm-wlm munge)
    # scripts/check-embedding.sh: the C++ header check, valgrind, and a venv for the Python tests.
    packages+=(g++ valgrind python3-venv)
    packages+=(chromium chromium-driver)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_prefix=""
    [ "$(id -u)" -ne 0 ] && sudo_prefix="sudo"
    $sudo_prefix apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
