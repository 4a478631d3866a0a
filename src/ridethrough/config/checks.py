"""Cross-checks: the problems a single key cannot show, only the whole config.

A route naming a provider that does not exist, a probe for a target no route has, a
provider's status page for an unknown provider: each is checked here, in one place, after
every model validated on its own; ``parse_config`` reports them with the key path like
any other problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ridethrough.config.health import HealthConfig, health_config_of

if TYPE_CHECKING:
    from ridethrough.config.models import Config


def cross_check(cfg: Config) -> list[str]:
    """Providers and routes: unknown names, fields that need or forbid each other."""
    problems: list[str] = []
    for name, p in cfg.providers.items():
        where = f"providers.{name}"
        if p.kind == "openai-compatible" and not p.base_url:
            problems.append(f"{where}.base_url: required for kind openai-compatible")
        if p.kind == "simulated" and p.format is None:
            problems.append(f"{where}.format: required for kind simulated (anthropic or openai)")
        if p.kind != "simulated" and p.format is not None:
            problems.append(f"{where}.format: only for kind simulated")
        if "/" in name:
            problems.append(f"{where}: provider names may not contain '/'")
    for rname, route in cfg.routes.items():
        for i, t in enumerate(route.targets):
            if t.provider not in cfg.providers:
                known = ", ".join(sorted(cfg.providers)) or "none defined"
                problems.append(
                    f"routes.{rname}.targets[{i}].provider: unknown provider {t.provider!r}"
                    f" (known: {known})"
                )
        if route.last_resort is not None:
            prov = route.last_resort.split("/", 1)[0]
            if prov not in cfg.providers or "/" not in route.last_resort:
                problems.append(
                    f"routes.{rname}.last_resort: must be 'provider/model' of a known provider"
                )
    return problems


def cross_check_health(cfg: Config, health: HealthConfig | None = None) -> list[str]:
    """Problems that need the rest of the config (unknown probe targets, providers)."""
    h = health or health_config_of(cfg)
    targets = {f"{t.provider}/{t.model}" for r in cfg.routes.values() for t in r.targets}
    targets |= {r.last_resort for r in cfg.routes.values() if r.last_resort}
    problems = []
    for key in h.probes:
        if key not in targets:
            known = ", ".join(sorted(targets)) or "none"
            problems.append(f"health.probes.{key}: unknown target (known: {known})")
    for section in ("pages", "components"):
        for name in getattr(h.status_pages, section):
            if name not in cfg.providers:
                problems.append(f"health.status_pages.{section}.{name}: unknown provider")
    return problems
