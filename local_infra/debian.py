"""A program from a Debian package, unpacked into .cache/ with `apt-get download` and `dpkg-deb -x`: no root
needed once the package lists exist, nothing installed system-wide, no service started."""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def unpacked_binary(package: str, path_in_package: str, cache_dir: Path = ROOT / ".cache") -> Path:
    """`path_in_package` (e.g. usr/bin/promtool) from Debian's `package`, fetched and unpacked once."""
    work = cache_dir / package
    unpacked = work / "root" / path_in_package
    if unpacked.exists():
        return unpacked
    work.mkdir(parents=True, exist_ok=True)
    print(f"[local_infra] fetching Debian's {package} package into .cache/ (once)", flush=True)
    fetched = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, text=True)
    if fetched.returncode != 0 and os.geteuid() == 0:
        # A bare machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        fetched = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, text=True)
    packages = sorted(glob.glob(str(work / f"{package}_*.deb")))
    if not packages:
        raise RuntimeError(f"cannot fetch Debian's {package} package: {fetched.stderr.strip()}")
    subprocess.run(["dpkg-deb", "-x", packages[-1], str(work / "root")], check=True)
    if not unpacked.exists():
        raise RuntimeError(f"Debian's {package} package has no {path_in_package}")
    return unpacked
