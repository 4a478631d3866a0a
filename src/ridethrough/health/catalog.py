"""The components ridethrough reports on, named once for every view of them.

The status page, the Statuspage JSON, badges, metrics, incidents and webhooks all talk about
the same things — a route, a target (provider/model), a provider — and must agree on their
ids and names, or a tool watching the JSON would see components appear and vanish. Ids are
derived from names (stable across restarts); Statuspage's random ids would not be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ROUTES_GROUP = "group:routes"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass(frozen=True, slots=True)
class Component:
    key: str                    # "route:<name>", "target:<provider>/<model>", "provider:<name>"
    id: str                     # the Statuspage-style id, derived from the key
    name: str
    kind: str                   # route | target | provider | group
    position: int
    group_key: str | None = None
    description: str | None = None
    provider: str | None = None
    target: str | None = None   # "provider/model" for targets
    route: str | None = None

    @property
    def is_group(self) -> bool:
        return self.kind in ("provider", "group")


@dataclass(slots=True)
class Catalog:
    components: dict[str, Component] = field(default_factory=dict)
    first_target: dict[str, str] = field(default_factory=dict)   # route → its first target key
    route_targets: dict[str, list[str]] = field(default_factory=dict)
    created_at: float = 0.0

    @classmethod
    def from_routes(cls, routes: dict[str, list[str]], last_resorts: dict[str, str] | None = None,
                    created_at: float = 0.0) -> Catalog:
        """Build from route name → ordered target keys ("provider/model")."""
        cat = cls(created_at=created_at)
        pos = 0

        def add(c: Component) -> None:
            cat.components[c.key] = c

        add(Component(ROUTES_GROUP, "routes", "Routes", "group", pos,
                      description="What clients call: one model name each, with its fallbacks."))
        for rname, targets in routes.items():
            pos += 1
            chain = list(targets) + ([last_resorts[rname]] if last_resorts and rname in last_resorts else [])
            cat.first_target[rname] = targets[0]
            cat.route_targets[rname] = chain
            add(Component(f"route:{rname}", "route-" + slug(rname), rname, "route", pos,
                          ROUTES_GROUP, description=" → ".join(chain), route=rname))
        providers: dict[str, list[str]] = {}
        for chain in cat.route_targets.values():
            for key in chain:
                prov = key.split("/", 1)[0]
                if key not in providers.setdefault(prov, []):
                    providers[prov].append(key)
        for prov, keys in providers.items():
            pos += 1
            gkey = f"provider:{prov}"
            add(Component(gkey, "provider-" + slug(prov), prov, "provider", pos,
                          description=f"Provider {prov} as seen from our own traffic.",
                          provider=prov))
            for key in keys:
                pos += 1
                add(Component(f"target:{key}", "target-" + slug(key), key, "target", pos, gkey,
                              provider=prov, target=key))
        return cat

    @classmethod
    def from_gateway(cls, gw: Any, created_at: float = 0.0) -> Catalog:
        routes = {r: [t.key for t in ts] for r, ts in gw.routes.items()}
        last = {r: t.key for r, t in gw.last_resorts.items()}
        return cls.from_routes(routes, last, created_at)

    # -- lookups -----------------------------------------------------------------------

    def find(self, ref: str) -> Component | None:
        """By key, id, name, route name or target key: badges and the CLI accept any."""
        if ref in self.components:
            return self.components[ref]
        for prefix in ("route:", "target:", "provider:"):
            c = self.components.get(prefix + ref)
            if c is not None:
                return c
        for c in self.components.values():
            if ref in (c.id, c.name) or slug(ref) == c.id:
                return c
        return None

    def children(self, group_key: str) -> list[Component]:
        return [c for c in self.components.values() if c.group_key == group_key]

    def targets(self) -> list[str]:
        """Every target key ("provider/model"), in page order."""
        return [c.target for c in self.components.values() if c.kind == "target" and c.target]

    def leaves(self) -> list[Component]:
        """Components with their own status (routes and targets)."""
        return [c for c in self.components.values() if c.kind in ("route", "target")]

    def subject_of(self, c: Component) -> str:
        """What an incident is about: a provider (all its targets) or one route."""
        return f"provider:{c.provider}" if c.kind == "target" else f"route:{c.route}"

    def members(self, subject: str) -> list[Component]:
        if subject.startswith("provider:"):
            return self.children(subject)
        c = self.components.get(subject)
        return [c] if c is not None else []

    def subject_targets(self, subject: str) -> set[str]:
        """Target keys whose failed attempts count as affected requests of a subject."""
        if subject.startswith("provider:"):
            return {c.target for c in self.children(subject) if c.target}
        return set(self.route_targets.get(subject.removeprefix("route:"), []))
