#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Kiln needs, only if something is missing.
# --server-tests also installs what the `kiln serve` client tests need (a headless browser and
# its WebDriver, Python's venv).
set -euo pipefail
packages=(libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers glslang-dev spirv-tools libpng-dev pkg-config)
if [ "${1:-}" = "--server-tests" ]; then
    packages+=(chromium chromium-driver)
    python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv)
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
