"""A Confluent-compatible schema registry for tests and `make up --registry`: Apicurio Registry 3, the ready
Quarkus app from Maven Central (io.apicurio:apicurio-registry-app:<v>:tar.gz:all, cached in .cache/),
in-memory storage, HTTP and management ports on loopback. It needs Java 21 or newer."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from local_infra.process import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
APICURIO_VERSION = "3.3.3"
# Where Java 21+ may be, besides JAVA_FOR_REGISTRY and the java on PATH.
JAVA_CANDIDATES = (
    "/usr/lib/jvm/temurin-25-jdk-amd64",
    "/usr/lib/jvm/temurin-21-jdk-amd64",
    "/usr/lib/jvm/java-21-openjdk-amd64",
)


def _java_major(java: str) -> int:
    done = subprocess.run([java, "-version"], capture_output=True, text=True)
    text = done.stderr + done.stdout
    for token in text.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and int(head) >= 8:
            return int(head)
    return 0


def java_21() -> str:
    """A java of version 21 or newer: JAVA_FOR_REGISTRY, a known JDK folder, or the java on PATH."""
    found = [os.environ.get("JAVA_FOR_REGISTRY", "")]
    found += [str(Path(home) / "bin" / "java") for home in JAVA_CANDIDATES]
    found += sorted(glob.glob("/usr/lib/jvm/*/bin/java"), reverse=True)
    found.append(shutil.which("java") or "")
    for java in found:
        if java and Path(java).exists() and _java_major(java) >= 21:
            return java
    raise RuntimeError("Apicurio Registry needs Java 21 or newer (set JAVA_FOR_REGISTRY=/path/to/java)")


def ensure_app(cache_dir: Path = ROOT / ".cache", version: str = APICURIO_VERSION) -> Path:
    """The unpacked Quarkus app (its quarkus-run.jar), fetched with Maven once."""
    home = cache_dir.resolve() / f"apicurio-registry-{version}"
    marker = home / ".complete"
    if marker.exists():
        return next(home.rglob("quarkus-run.jar"))
    home.mkdir(parents=True, exist_ok=True)
    artifact = f"io.apicurio:apicurio-registry-app:{version}:tar.gz:all"
    fetched = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={home}"],
        capture_output=True,
        text=True,
        cwd=home,
    )
    archives = list(home.glob("*.tar.gz"))
    if fetched.returncode != 0 or not archives:
        raise RuntimeError(f"Maven could not fetch {artifact}:\n{fetched.stdout}\n{fetched.stderr}")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(home / "app", filter="data")
    archives[0].unlink()
    marker.write_text(version)
    return next(home.rglob("quarkus-run.jar"))


@dataclass
class Registry:
    url: str  # the Confluent-compatible API, e.g. http://127.0.0.1:P/apis/ccompat/v7
    process: ManagedProcess

    def stop(self) -> None:
        self.process.stop()


def start_registry(run_dir: Path, port: int = 0, cache_dir: Path = ROOT / ".cache", timeout: float = 90) -> Registry:
    jar = ensure_app(cache_dir)
    port = port or free_port()
    argv = [
        java_21(),
        "-Xmx192m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dquarkus.http.host=127.0.0.1",
        f"-Dquarkus.http.port={port}",
        "-Dquarkus.management.host=127.0.0.1",
        f"-Dquarkus.management.port={free_port()}",
        "-jar",
        str(jar),
    ]
    process = ManagedProcess("registry", argv, run_dir / "registry.log", cwd=jar.parent)
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"the schema registry exited:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(f"{url}/subjects", timeout=2) as answer:  # noqa: S310 - loopback only
                if answer.status == 200:
                    return Registry(url, process)
        except OSError:
            time.sleep(0.3)
    process.stop()
    raise TimeoutError(f"the schema registry did not answer on {url}")


def main() -> None:
    """`python -m local_infra.registry`: fetch Apicurio Registry into .cache/ once and find Java 21+."""
    print(ensure_app(), java_21())


if __name__ == "__main__":
    main()
