"""The edge for a local stack: nginx in front of the API, as the only listener on the public port.

The binary is the machine's nginx, else Debian's nginx package fetched with
`apt-get download` and unpacked into .cache/ (no root, nothing installed
system-wide, no service started). The configuration is edge/nginx.conf.template,
the same file docker-compose uses, filled in here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from local_infra.debian import unpacked_binary
from local_infra.process import ManagedProcess, port_open, wait_until

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "edge" / "nginx.conf.template"
# Long-polls answer within MAX_STATUS_WAIT_SECONDS (30 s by default): the edge waits longer than that.
UPSTREAM_READ_TIMEOUT_SECONDS = 75


def nginx_binary(cache_dir: Path = ROOT / ".cache") -> Path:
    """nginx from PATH, else Debian's package unpacked into `cache_dir` (fetched once)."""
    found = shutil.which("nginx")
    if found:
        return Path(found)
    return unpacked_binary("nginx", "usr/sbin/nginx", cache_dir)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (made once per directory) and its key."""
    certificate, key = directory / "edge.crt", directory / "edge.key"
    if not (certificate.exists() and key.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout", str(key), "-out", str(certificate),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        key.chmod(0o600)
    return certificate, key


@dataclass(frozen=True)
class EdgeConfig:
    """What the template needs; defaults for one machine's stack."""

    listen_port: int
    api_port: int
    max_body_bytes: int
    state_dir: Path
    tls: tuple[Path, Path] | None = None
    connections_per_client: int = 64
    requests_per_second: int = 200
    request_burst: int = 400
    worker_processes: int = 1

    def values(self) -> dict[str, str]:
        tls = ""
        if self.tls is not None:
            certificate, key = self.tls
            tls = (
                f"ssl_certificate {certificate};\n        ssl_certificate_key {key};\n"
                "        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_cache shared:tls:10m;"
            )
        # A master running as root hands requests to unprivileged workers, which must write the temp files.
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        return {
            "EDGE_WORKER_PROCESSES": str(self.worker_processes),
            "EDGE_STATE_DIR": str(self.state_dir),
            "EDGE_USER_DIRECTIVE": user,
            "EDGE_MAX_BODY_BYTES": str(self.max_body_bytes),
            "EDGE_REQUESTS_PER_SECOND": str(self.requests_per_second),
            "EDGE_REQUEST_BURST": str(self.request_burst),
            "EDGE_CONNECTIONS_PER_CLIENT": str(self.connections_per_client),
            "EDGE_API_ADDRESS": f"127.0.0.1:{self.api_port}",
            "EDGE_LISTEN": f"127.0.0.1:{self.listen_port}" + (" ssl" if self.tls else ""),
            "EDGE_TLS_DIRECTIVES": tls,
            "EDGE_UPSTREAM_READ_TIMEOUT": str(UPSTREAM_READ_TIMEOUT_SECONDS),
        }


def render(config: EdgeConfig) -> str:
    """The nginx configuration: the template with its ${EDGE_...} names filled in."""
    return Template(TEMPLATE.read_text()).safe_substitute(config.values())


@dataclass
class Edge:
    config: EdgeConfig
    process: ManagedProcess
    ready_seconds: float
    cache_dir: Path = field(default=ROOT / ".cache")

    name = "edge"

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://127.0.0.1:{self.config.listen_port}"

    def stop(self) -> None:
        self.process.stop(timeout=10)

    def restart(self) -> None:
        self.process.stop()
        again = start_edge(self.config, self.cache_dir)
        self.process, self.ready_seconds = again.process, again.ready_seconds


def start_edge(config: EdgeConfig, cache_dir: Path = ROOT / ".cache", timeout: float = 30.0) -> Edge:
    """nginx with this configuration, in the foreground of its own process; returns once it listens."""
    started = time.monotonic()
    binary = nginx_binary(cache_dir)
    state = config.state_dir
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (state / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(state / sub, "nobody", "nogroup")
    conf = state / "nginx.conf"
    conf.write_text(render(config))
    argv = [str(binary), "-p", str(state), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"]
    process = ManagedProcess("edge", argv, state / "edge.log")
    try:
        wait_until(lambda: port_open(config.listen_port), timeout, f"edge on :{config.listen_port}", process)
    except BaseException:
        process.stop()
        raise
    return Edge(config, process, time.monotonic() - started, cache_dir)


def main() -> None:
    """`python -m local_infra.edge`: fetch nginx now, so no test or start-up waits for it."""
    print(f"[local_infra] edge: {nginx_binary()}", flush=True)


if __name__ == "__main__":
    main()
