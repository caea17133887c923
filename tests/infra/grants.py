"""The IAM grants of the Terraform configuration, with their scope, and the check that they are exactly
what the services need (tests/gcp/test_permissions.py feeds it the permissions recorded on the emulators).

A grant covers a need when its role holds the permission and the need's resource is the grant's
resource or inside it (projects/P contains projects/P/datasets/D/tables/T; a bucket its objects; a topic
only itself), and its IAM condition, if any, allows that resource name. Conditions are read as IAM
evaluates them for these resources: `resource.name.startsWith("...")` alternatives joined by `||`;
anything else is refused rather than guessed. Roles: predefined ones from tests/infra/permissions.py,
custom ones (google_project_iam_custom_role) from their `permissions` in the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.infra.hcl import Module, ResourceInstance, Unknown
from tests.infra.permissions import ROLES

SERVICE_MEMBER = re.compile(r"^module\.([\w-]+)\.service_account_member$")
_REF = re.compile(r"^(?P<type>\w+)\.(?P<name>\w+)(?:\[(?P<key>[^\]]+)\])?\.(?P<attr>\w+)$")
_STARTS = re.compile(r'^resource\.name\.startsWith\("([^"]+)"\)$')


class UnsupportedCondition(ValueError):
    pass


@dataclass(frozen=True)
class Grant:
    address: str
    service: str
    role: str
    resource: str
    permissions: frozenset[str]
    prefixes: tuple[str, ...] | None = None  # the condition's allowed resource-name prefixes

    def covers(self, permission: str, resource: str) -> bool:
        inside = resource == self.resource or resource.startswith(self.resource.rstrip("/") + "/")
        allowed = self.prefixes is None or any(resource.startswith(p) for p in self.prefixes)
        return permission in self.permissions and inside and allowed


@dataclass
class Verdict:
    missing: list[tuple[str, str, str, str]]  # (service, permission, resource, why)
    unused: list[Grant]
    extra: dict[str, set[str]]  # grant address -> permissions of its role that no need used

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unused


def grants(plan: Module) -> list[Grant]:
    """Every grant to one of the services' own service accounts, as a Grant."""
    out = []
    for grant in plan.resources():
        if not grant.type.endswith("_iam_member"):
            continue
        member = grant.get("member")
        m = SERVICE_MEMBER.match(member.path) if isinstance(member, Unknown) else None
        if m is None:
            continue
        role = grant.get("role")
        resource, permissions = _resource(plan, grant), _permissions(plan, role)
        out.append(Grant(grant.address, m.group(1), _role_name(role), resource, permissions, _condition(grant)))
    return out


def check(needs: Mapping[str, Iterable[tuple[str, str, str]]], given: Iterable[Grant]) -> Verdict:
    """needs: service -> (permission, resource, why). Missing: a need no grant of that service covers.
    Unused: a grant that covers no need of its service."""
    given = list(given)
    missing, used = [], {g.address: set() for g in given}
    for service, wanted in needs.items():
        mine = [g for g in given if g.service == service]
        for permission, resource, why in sorted(set(wanted)):
            covering = [g for g in mine if g.covers(permission, resource)]
            if not covering:
                missing.append((service, permission, resource, why))
            for g in covering:
                used[g.address].add(permission)
    unused = [g for g in given if not used[g.address]]
    extra = {g.address: set(g.permissions - used[g.address]) for g in given if used[g.address]}
    return Verdict(missing, unused, {a: p for a, p in extra.items() if p})


# -- reading a grant ----------------------------------------------------------------------------------


def _role_name(role: Any) -> str:
    return role if isinstance(role, str) else role.path


def _permissions(plan: Module, role: Any) -> frozenset[str]:
    if isinstance(role, str):
        if role not in ROLES:
            raise KeyError(f"{role} is not in tests/infra/permissions.py ROLES: add it with its source")
        return ROLES[role]
    custom = _referenced(plan, role)
    if custom is None or custom.type != "google_project_iam_custom_role":
        raise KeyError(f"a role that is neither predefined nor a custom role of the configuration: {role}")
    return frozenset(custom.get("permissions"))


def _referenced(plan: Module, value: Any) -> ResourceInstance | None:
    m = _REF.match(value.path) if isinstance(value, Unknown) else None
    if m is None:
        return None
    for r in plan.resources(m["type"]):
        if r.name == m["name"] and (m["key"] is None or str(r.key) == m["key"]):
            return r
    return None


def _value(plan: Module, value: Any) -> Any:
    """A reference to another resource's name or id resolved to its planned value, where it is known."""
    if not isinstance(value, Unknown):
        return value
    target, attr = _referenced(plan, value), value.path.rsplit(".", 1)[-1]
    if target is None:
        raise ValueError(f"cannot resolve {value.path}")
    if attr != "id":
        return _value(plan, target.get(attr))
    if target.type == "google_secret_manager_secret":
        return f"projects/{_value(plan, target.get('project'))}/secrets/{_value(plan, target.get('secret_id'))}"
    if target.type == "google_project_iam_custom_role":
        return f"projects/{_value(plan, target.get('project'))}/roles/{_value(plan, target.get('role_id'))}"
    raise ValueError(f"no id format for {target.type}")


def _resource(plan: Module, grant: ResourceInstance) -> str:
    attributes = ("project", "topic", "subscription", "bucket", "secret_id", "dataset_id", "table_id")
    v = {a: _value(plan, grant.get(a)) for a in attributes if a in grant.body}
    kind = grant.type.removeprefix("google_").removesuffix("_iam_member")
    if kind == "pubsub_topic":
        return v["topic"] if v["topic"].startswith("projects/") else f"projects/{v['project']}/topics/{v['topic']}"
    if kind == "pubsub_subscription":
        sub = v["subscription"]
        return sub if sub.startswith("projects/") else f"projects/{v['project']}/subscriptions/{sub}"
    if kind == "storage_bucket":
        return f"projects/_/buckets/{v['bucket'].removeprefix('b/')}"
    if kind == "secret_manager_secret":
        secret = v["secret_id"]
        return secret if secret.startswith("projects/") else f"projects/{v['project']}/secrets/{secret}"
    if kind == "bigquery_dataset":
        return f"projects/{v['project']}/datasets/{v['dataset_id']}"
    if kind == "bigquery_table":
        return f"projects/{v['project']}/datasets/{v['dataset_id']}/tables/{v['table_id']}"
    if kind == "project":
        return f"projects/{v['project']}"
    raise ValueError(f"{grant.address}: no resource format for {grant.type}")


def _condition(grant: ResourceInstance) -> tuple[str, ...] | None:
    blocks = grant.blocks("condition")
    if not blocks:
        return None
    expression = blocks[0].get("expression")
    if not isinstance(expression, str):
        raise UnsupportedCondition(f"{grant.address}: condition not known at plan time: {expression!r}")
    prefixes = []
    for alternative in expression.split("||"):
        m = _STARTS.match(alternative.strip())
        if m is None:
            raise UnsupportedCondition(f"{grant.address}: cannot read condition {alternative.strip()!r}")
        prefixes.append(m.group(1))
    return tuple(prefixes)
