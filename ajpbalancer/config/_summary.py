"""Describe a valid configuration in a few lines, for ``--check``."""

from __future__ import annotations

from ajpbalancer.config._model import Config


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def summary(config: Config) -> str:
    """One line per frontend, balancer and member, then ``OK: …`` with the totals."""
    lines: list[str] = []
    for frontend in config.frontends:
        header = f"[frontend:{frontend.name}]" if frontend.name else "[frontend]"
        listen = ", ".join(listen.description for listen in frontend.listen)
        lines.append(f"{header} listen {listen}; {_count(len(frontend.rules), 'rule')}")
    for balancer in config.balancers:
        lines.append(
            f"[balancer://{balancer.name}] lbmethod {balancer.params.lbmethod}; "
            f"{_count(len(balancer.members), 'member')}"
        )
        for member in balancer.members:
            route = member.params.route if member.params.route is not None else "-"
            line = f"  member {member.url} route {route} loadfactor {member.params.loadfactor:g}"
            if member.params.upgrade:
                line += f" upgrade {','.join(member.params.upgrade)}"
                if member.params.upgradeurl is not None:
                    line += f" via {member.params.upgradeurl}"
            lines.append(line)
    rules = sum(len(f.rules) for f in config.frontends)
    members = sum(len(b.members) for b in config.balancers)
    totals = (
        _count(len(config.frontends), "frontend"),
        _count(rules, "rule"),
        _count(len(config.balancers), "balancer"),
        _count(members, "member"),
    )
    lines.append("OK: " + ", ".join(totals))
    return "\n".join(lines)
