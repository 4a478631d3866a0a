"""Command line: serve, check, hash-key, demo, simulate, admin.

Kept thin: each command parses its options and calls into the package. Click because it
is the well-kept standard for this (typed options, help, testing with CliRunner).
"""

from __future__ import annotations

import os
import sys

import click

from ridethrough.cli_http import call
from ridethrough.config import Config, ConfigError, default_config, load_config, provider_key_status


def _load(config_path: str | None) -> tuple[Config, str]:
    if config_path:
        return load_config(config_path), config_path
    return default_config(local_model=_local_model_installed()), "built from the environment"


def _local_model_installed() -> bool:
    from ridethrough.providers.local_model import find_gguf

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return find_gguf() is not None


def describe(cfg: Config) -> list[str]:
    lines = []
    keys = {k.provider: k for k in provider_key_status(cfg)}
    for name, p in cfg.providers.items():
        status = "ok"
        k = keys.get(name)
        if k is not None and not k.present:
            status = f"UNAVAILABLE: {k.env or 'api_key_env'} is not set"
        where = p.base_url or {"simulated": "in-process simulator",
                               "local": "in-process llama.cpp"}.get(p.kind, "default URL")
        lines.append(f"  provider {name}: {p.kind} ({where}) — {status}")
    for rname, r in cfg.routes.items():
        chain = " → ".join(f"{t.provider}/{t.model}" for t in r.targets)
        extra = []
        if r.cache.mode != "off":
            extra.append(f"cache {r.cache.mode}")
        if r.static_answer:
            extra.append("static answer")
        lines.append(f"  route {rname}: {chain}" + (f"  [{', '.join(extra)}]" if extra else ""))
    return lines


@click.group()
@click.version_option(package_name="ridethrough")
def main() -> None:
    """ridethrough: an AI gateway that keeps answering when the provider goes down."""


@main.command()
@click.option("--config", "config_path", type=click.Path(), help="YAML config file.")
@click.option("--host", default=None, help="Address to bind (default from config: 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default from config: 8080).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes serving the port. Each keeps its own breakers; health, "
                   "incidents and the cache are shared through the data dir (docs/workers.md).")
def serve(config_path: str | None, host: str | None, port: int | None, workers: int) -> None:
    """Run the gateway."""
    from ridethrough.server import BindRefused, configure_logging, serve_workers
    from ridethrough.server import serve as run

    configure_logging()
    try:
        cfg, source = _load(config_path)
    except ConfigError as e:
        click.echo("invalid config:\n" + "\n".join(f"  {p}" for p in e.problems), err=True)
        sys.exit(2)
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    click.echo(f"ridethrough: config {source}", err=True)
    for line in describe(cfg):
        click.echo(line, err=True)
    if not config_path and "local" in cfg.routes:
        click.echo("  no API keys set: serving the embedded default — route 'local' answered by "
                   "the local model, with the response cache in front", err=True)
    if workers > 1:
        def announce(bound: int) -> None:
            click.echo(f"ridethrough: listening on http://{host}:{bound} with {workers} worker "
                       f"processes (supervisor pid {os.getpid()})", err=True)
        try:
            sys.exit(serve_workers(cfg, host, port, workers, announce=announce))
        except BindRefused as e:
            click.echo(f"ridethrough: {e}", err=True)
            sys.exit(2)
        except OSError as e:
            click.echo(f"ridethrough: cannot listen on {host}:{port}: {e.strerror or e}", err=True)
            sys.exit(2)
    click.echo(f"ridethrough: listening on http://{host}:{port}", err=True)
    try:
        run(cfg, host, port)
    except BindRefused as e:
        click.echo(f"ridethrough: {e}", err=True)
        sys.exit(2)


@main.command()
@click.option("--config", "config_path", type=click.Path(), help="YAML config file.")
def check(config_path: str | None) -> None:
    """Validate a config and report providers whose key is missing."""
    try:
        cfg, source = _load(config_path)
    except ConfigError as e:
        click.echo("invalid config:\n" + "\n".join(f"  {p}" for p in e.problems), err=True)
        sys.exit(2)
    click.echo(f"config OK ({source})")
    for line in describe(cfg):
        click.echo(line)
    missing = [k for k in provider_key_status(cfg) if not k.present]
    if missing:
        click.echo(f"{len(missing)} provider(s) unavailable until their key is set.")


@main.command("hash-key")
@click.argument("key", required=False)
@click.option("--name", default="client", help="Name recorded with the key.")
def hash_key_cmd(key: str | None, name: str) -> None:
    """Hash a gateway/admin key for the config (generates a new key if none is given)."""
    from ridethrough.keys import hash_key, new_key

    generated = key is None
    if key is None and not sys.stdin.isatty():
        key = sys.stdin.read().strip() or None
        generated = key is None
    if key is None:
        key = new_key()
    if generated:
        click.echo(f"# new key (give it to the client; it is not stored anywhere): {key}")
    click.echo(f"- name: {name}\n  sha256: {hash_key(key)}")


@main.command()
@click.option("--fast", is_flag=True, help="A ~20 s run for CI.")
def demo(fast: bool) -> None:
    """Simulated providers, real SDK traffic through the gateway, an outage, a summary."""
    from ridethrough.demo import run_demo

    sys.exit(run_demo(fast=fast))


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=9001, type=int)
@click.option("--name", default="sim")
@click.option("--token-delay", default=0.01, type=float, help="Seconds per streamed token.")
def simulate(host: str, port: int, name: str, token_delay: float) -> None:
    """Run the provider simulator (Anthropic and OpenAI wire formats, fault injection)."""
    from ridethrough.simulator import run_simulator

    run_simulator(host, port, name, token_delay)


def _register_health_commands() -> None:
    from ridethrough.health.cli import incidents, status

    main.add_command(status)
    main.add_command(incidents)


_register_health_commands()


@main.group()
def admin() -> None:
    """Operate a running gateway (needs RIDETHROUGH_ADMIN_KEY)."""


@admin.command("breakers")
@click.option("--url", default="http://127.0.0.1:8080", envvar="RIDETHROUGH_URL")
def admin_breakers(url: str) -> None:
    """Show every target's breaker state."""
    data = call(url, "/admin/breakers", admin=True)
    for row in data["targets"]:
        extra = f" retry in {row['retry_in_s']}s" if row.get("retry_in_s") is not None else ""
        forced = f" forced {row['forced']}" if row.get("forced") else ""
        click.echo(f"{row['target']:40} {row['state']:10}{forced}{extra}"
                   f"  errors {row['window_error_rate']:.0%} of {row['window_requests']}")


def _set_state(url: str, target: str, mode: str) -> None:
    row = call(url, "/admin/targets", body={"target": target, "mode": mode}, admin=True)
    forced = f" (forced {row['forced']})" if row["forced"] else ""
    scope = f" — applies to {row['applies_to']}" if row.get("applies_to") else ""
    click.echo(f"{row['target']}: {row['state']}{forced}{scope}")
    if row.get("warning"):
        click.echo(f"warning: {row['warning']}", err=True)


@admin.command("drain")
@click.argument("target")
@click.option("--url", default="http://127.0.0.1:8080", envvar="RIDETHROUGH_URL")
def admin_drain(target: str, url: str) -> None:
    """Force TARGET (provider/model) down: no traffic until restored."""
    _set_state(url, target, "down")


@admin.command("restore")
@click.argument("target")
@click.option("--url", default="http://127.0.0.1:8080", envvar="RIDETHROUGH_URL")
def admin_restore(target: str, url: str) -> None:
    """Give TARGET back to its breaker (undo drain / force-up)."""
    _set_state(url, target, "auto")


@admin.command("force-up")
@click.argument("target")
@click.option("--url", default="http://127.0.0.1:8080", envvar="RIDETHROUGH_URL")
def admin_force_up(target: str, url: str) -> None:
    """Force TARGET up, ignoring its breaker."""
    _set_state(url, target, "up")
