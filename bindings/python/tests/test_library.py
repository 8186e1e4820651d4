"""kiln.devices() is `kiln devices --json`; the library is found through KILN_LIBRARY, the
package's folder, then the system's search path."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import kiln
from conftest import run_cli

PACKAGE = pathlib.Path(kiln.__file__).resolve().parent


def test_devices_are_what_kiln_devices_json_prints():
    assert kiln.devices() == json.loads(run_cli("devices", "--json").stdout)


def load_in_subprocess(tmp_path, environment, package=PACKAGE):
    """`kiln.library_path()` in a fresh interpreter importing `package`, or the error it raises."""
    script = "import kiln\ntry:\n    print(kiln.library_path())\nexcept kiln.KilnError as error:\n    print('ERROR', error)\n"
    env = {key: value for key, value in os.environ.items() if key not in ("KILN_LIBRARY", "LD_LIBRARY_PATH")}
    env.update(environment)
    env["PYTHONPATH"] = str(package.parent)
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path, check=True)
    return completed.stdout.strip()


def test_the_library_is_found_in_order(tmp_path):
    library = kiln.library_path()
    assert load_in_subprocess(tmp_path, {"KILN_LIBRARY": library}) == library
    missing = load_in_subprocess(tmp_path, {"KILN_LIBRARY": str(tmp_path / "libnothing.so")})
    assert missing.startswith("ERROR") and "KILN_LIBRARY" in missing

    # A copy of the package with the library in its folder.
    package = tmp_path / "site" / "kiln"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "libkiln.*"))
    (package / "libkiln.so").symlink_to(library)
    assert load_in_subprocess(tmp_path, {}, package=package) == str(package / "libkiln.so")

    # The system's search path.
    (package / "libkiln.so").unlink()
    system = tmp_path / "lib"
    system.mkdir()
    (system / "libkiln.so").symlink_to(library)
    assert load_in_subprocess(tmp_path, {"LD_LIBRARY_PATH": str(system)}, package=package) == "libkiln.so"
