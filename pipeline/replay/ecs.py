"""EDNS Client Subnet evidence (issue 15, item 6).

For every resolver asked with a client subnet: the share of its successful answers whose echoed
scope is above 0 (the answer was tailored to the subnet), and, against each resolver of the
same provider asked without one, the share of cycles (both answered) in which the two answer
sets differ. A resolver that ignores ECS has scope 0 (or no ECS option) and sets like its
sibling's; one that honours it shows scope > 0 and, where the CDN maps by subnet, other sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.replay.series import Series


@dataclass
class EcsRow:
    resolver: str
    provider: str | None
    subnet: str
    answers: int
    scoped: int  # successful answers with scope > 0
    compared_with: str | None  # the provider's resolver without a subnet
    both: int  # cycles both answered
    differ: int

    @property
    def scoped_share(self) -> float | None:
        return self.scoped / self.answers if self.answers else None

    @property
    def differ_share(self) -> float | None:
        return self.differ / self.both if self.both else None


def ecs_evidence(series: list[Series]) -> list[EcsRow]:
    info: dict[str, tuple[str | None, str | None]] = {}
    for s in series:
        for cycle in s.cycles:
            for name, a in cycle.answers.items():
                info.setdefault(name, (a.provider, a.ecs_subnet))
    rows = []
    for name, (provider, subnet) in sorted(info.items()):
        if not subnet:
            continue
        siblings = sorted(n for n, (p, sn) in info.items()
                          if provider and p == provider and not sn and n != name) or [None]
        for other in siblings:
            rows.append(_row(series, name, provider, subnet, other))
    return rows


def _row(series: list[Series], name: str, provider: str | None, subnet: str,
         other: str | None) -> EcsRow:
    row = EcsRow(name, provider, subnet, 0, 0, other, 0, 0)
    for s in series:
        for cycle in s.cycles:
            a = cycle.answers.get(name)
            if a is None or not a.ok:
                continue
            row.answers += 1
            row.scoped += bool(a.ecs_scope)
            b = cycle.answers.get(other) if other else None
            if b is not None and b.ok:
                row.both += 1
                row.differ += set(a.addresses) != set(b.addresses)
    return row
