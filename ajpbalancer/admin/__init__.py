"""The admin listener: balancer-manager, ``/status.json`` and Prometheus ``/metrics``."""

from __future__ import annotations

from ajpbalancer.admin._edits import (
    BalancerEdit,
    EditError,
    MemberEdit,
    apply_balancer_edit,
    apply_member_edit,
    parse_balancer_edit,
    parse_member_edit,
)
from ajpbalancer.admin._htpasswd import AdminUsersError, Htpasswd, HtpasswdChecker
from ajpbalancer.admin._metrics import ProxyMetrics
from ajpbalancer.admin._page import render_page
from ajpbalancer.admin._resources import MAX_FORM_BODY
from ajpbalancer.admin._site import AdminListener, admin_site
from ajpbalancer.admin._snapshot import Snapshot, as_json, snapshot, status_words

__all__ = [
    "MAX_FORM_BODY",
    "AdminListener",
    "AdminUsersError",
    "BalancerEdit",
    "EditError",
    "Htpasswd",
    "HtpasswdChecker",
    "MemberEdit",
    "ProxyMetrics",
    "Snapshot",
    "admin_site",
    "apply_balancer_edit",
    "apply_member_edit",
    "as_json",
    "parse_balancer_edit",
    "parse_member_edit",
    "render_page",
    "snapshot",
    "status_words",
]
