"""The balancer-manager HTML page, written from a :class:`Snapshot` as httpd writes its own.

The layout, column names, form fields and status words are httpd's
(``balancer_display_page``): a table of parameters per balancer, a table of members,
and, when a member (``?b=NAME&w=URL``) or a balancer (``?b=NAME``) is selected, its edit
form, posted back to the page with the balancer's nonce. It is machine-compatible with
httpd's: the version line says ``Apache/2.4.0 (compatible; ajpbalancer/X.Y.Z)``, the
first link is the balancer's and every other link a member's, written as httpd writes
them (``/balancer-manager?b=NAME&w=MEMBER_URL&nonce=NONCE``, the URL unencoded but for
characters that would end the query), and the member table's columns are httpd's in its
order; ours (Flags, Errors) come after them, so scrapers written for httpd (Ansible's
``apache2_mod_proxy``) read it unchanged. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from ajpbalancer.admin._snapshot import BalancerView, MemberView, Snapshot
from ajpbalancer.config import LBMETHODS

PAGE = "balancer-manager"
PAGE_PATH = "/" + PAGE
APACHE_VERSION = "2.4.0"
"""The httpd version the page says it is compatible with (tools check for 2.4)."""

_URI_SAFE = "$-_.+!*'(),:;@=/~"
"""What httpd's ``ap_escape_uri`` leaves as it is (``&`` aside: it would end the field)."""

_STYLE = """\
table { border: 1px solid gray; border-spacing: 3px; border-collapse: collapse;
        background-color: white; text-align: center; }
th { border: 1px dotted gray; padding: 2px; background-color: lightgray; text-align: center; }
td { border: 1px dotted gray; padding: 2px; background-color: white; text-align: center; }
.message { font-weight: bold; }
"""

_FLAG_NAMES = (
    ("I", "Ignore Errors"),
    ("N", "Draining Mode"),
    ("D", "Disabled"),
    ("H", "Hot Standby"),
    ("R", "Hot Spare"),
    ("C", "HC Fail"),
    ("S", "Stopped"),
)
"""The status radios of the member form, in httpd's order (``C`` only with a health check)."""


def e(value: object) -> str:
    """HTML-escape ``value``'s text, quotes included."""
    return html.escape(str(value), quote=True)


def strfsize(size: int) -> str:
    """A byte count as httpd's To/From columns show it (APR's ``apr_strfsize``)."""
    if size < 0:
        return "-"
    if size < 973:
        return f"{size}"
    units = "KMGTPE"
    unit = 0
    while True:
        remain = size & 1023
        size >>= 10
        if size >= 973:
            unit += 1
            continue
        if size < 9 or (size == 9 and remain < 973):
            tenths = (remain * 5 + 256) // 512
            if tenths >= 10:
                size, tenths = size + 1, 0
            return f"{size}.{tenths}{units[unit]}"
        if remain >= 512:
            size += 1
        return f"{size}{units[unit]}"


def _link(path: str, balancer: str, nonce: str, member: str | None = None) -> str:
    """httpd's link: ``/balancer-manager?b=NAME[&w=URL]&nonce=NONCE``, HTML-escaped
    (``path``: the page's path as asked for, ``/balancer-manager`` or with a slash)."""
    query = f"?b={quote(balancer, safe=_URI_SAFE)}"
    if member is not None:
        query += f"&w={quote(member, safe=_URI_SAFE)}"
    return e(f"{path}{query}&nonce={quote(nonce, safe=_URI_SAFE)}")


def _sticky(b: BalancerView) -> str:
    return " | ".join(b.stickysession)


def _balancer_table(b: BalancerView, path: str) -> list[str]:
    return [
        f'<hr>\n<h3>LoadBalancer Status for <a href="{_link(path, b.name, b.nonce)}">'
        f"balancer://{e(b.name)}</a></h3>",
        "<table><tr><th>MaxMembers</th><th>StickySession</th><th>DisableFailover</th>"
        "<th>Timeout</th><th>FailoverAttempts</th><th>Method</th></tr>",
        f"<tr><td>{len(b.members)} [{len(b.members)} Used]</td>"
        f"<td>{e(_sticky(b)) if b.stickysession else '(None)'}</td>"
        f"<td>{'On' if b.nofailover else 'Off'}</td>"
        f"<td>{b.timeout:g}</td><td>{b.maxattempts}</td><td>{e(b.lbmethod)}</td></tr>",
        "</table>\n<br>",
    ]


def _members_table(
    members: tuple[MemberView, ...], balancer: BalancerView | None, path: str = PAGE_PATH
) -> list[str]:
    with_hc = any(m.health_check is not None for m in members)
    head = (
        "<table><tr><th>Worker URL</th><th>Route</th><th>RouteRedir</th><th>Factor</th>"
        "<th>Set</th><th>Status</th><th>Elected</th><th>Busy</th><th>Load</th>"
        "<th>To</th><th>From</th>"
    )
    if with_hc:
        head += (
            "<th>HC Method</th><th>HC Interval</th><th>Passes</th><th>Fails</th>"
            "<th>HC uri</th><th>HC State</th>"
        )
    out = [head + "<th>Flags</th><th>Errors</th></tr>"]
    for m in members:
        name = e(m.name)
        cell = name
        if balancer is not None:
            cell = f'<a href="{_link(path, balancer.name, balancer.nonce, m.name)}">{name}</a>'
        row = (
            f"<tr><td>{cell}</td><td>{e(m.route or '')}</td><td>{e(m.redirect or '')}</td>"
            f"<td>{m.loadfactor:.2f}</td><td>{m.lbset}</td><td>{e(m.status)}</td>"
            f"<td>{m.elected}</td><td>{m.busy}</td><td>{m.lbstatus}</td>"
            f"<td>{strfsize(m.transferred)}</td><td>{strfsize(m.read)}</td>"
        )
        if with_hc:
            hc = m.health_check
            if hc is None:
                row += "<td>NONE</td><td></td><td></td><td></td><td></td><td></td>"
            else:
                passes = f"{hc.passes}" + ("" if hc.pcount is None else f" ({hc.pcount})")
                fails = f"{hc.fails}" + ("" if hc.fcount is None else f" ({hc.fcount})")
                row += (
                    f"<td>{e(hc.method)}</td><td>{hc.interval * 1000:.0f}ms</td>"
                    f"<td>{passes}</td><td>{fails}</td><td>{e(hc.uri)}</td>"
                    f"<td>{'Passing' if hc.passing else 'Failing'}</td>"
                )
        out.append(row + f"<td>{e(m.flags)}</td><td>{m.errors}</td></tr>")
    out.append("</table>")
    return out


def _radio(name: str, on: bool) -> str:
    checked_on = " checked" if on else ""
    checked_off = "" if on else " checked"
    return (
        f'<td><label for="{name}1">On</label> '
        f'<input name="{name}" id="{name}1" value="1" type="radio"{checked_on}> <br> '
        f'<label for="{name}0">Off</label> '
        f'<input name="{name}" id="{name}0" value="0" type="radio"{checked_off}></td>'
    )


def _hidden(b: BalancerView) -> str:
    return (
        f'<input type="hidden" name="b" id="b" value="{e(b.name)}">\n'
        f'<input type="hidden" name="nonce" id="nonce" value="{e(b.nonce)}">'
    )


def _member_form(b: BalancerView, m: MemberView) -> list[str]:
    flags = [(letter, title) for letter, title in _FLAG_NAMES]
    if m.health_check is None:
        flags = [(letter, title) for letter, title in flags if letter != "C"]
    return [
        f"<h3>Edit worker settings for {e(m.name)}</h3>",
        f'<form method="POST" enctype="application/x-www-form-urlencoded" action="{PAGE_PATH}">',
        "<table>",
        '<tr><td>Load factor:</td><td><input name="w_lf" id="w_lf" type="text" '
        f'value="{m.loadfactor:.2f}"></td></tr>',
        '<tr><td>LB Set:</td><td><input name="w_ls" id="w_ls" type="text" '
        f'value="{m.lbset}"></td></tr>',
        '<tr><td>Route:</td><td><input name="w_wr" id="w_wr" type="text" '
        f'value="{e(m.route or "")}"></td></tr>',
        '<tr><td>Route Redirect:</td><td><input name="w_rr" id="w_rr" type="text" '
        f'value="{e(m.redirect or "")}"></td></tr>',
        "<tr><td>Status:</td><td><table><tr>"
        + "".join(f"<th>{title}</th>" for _, title in flags)
        + "</tr>\n<tr>"
        + "".join(_radio(f"w_status_{letter}", letter in m.flags) for letter, _ in flags)
        + "</tr></table></td></tr>",
        '<tr><td colspan="2"><input type="submit" value="Submit"></td></tr>',
        "</table>",
        f'<input type="hidden" name="w" id="w" value="{e(m.name)}">',
        _hidden(b),
        "</form>\n<hr>",
    ]


def _balancer_form(b: BalancerView) -> list[str]:
    options = "".join(
        f'<option value="{e(name)}"{" selected" if name == b.lbmethod else ""}>{e(name)}</option>'
        for name in LBMETHODS
    )
    return [
        f"<h3>Edit balancer settings for balancer://{e(b.name)}</h3>",
        f'<form method="POST" enctype="application/x-www-form-urlencoded" action="{PAGE_PATH}">',
        "<table>",
        f'<tr><td>LBmethod:</td><td><select name="b_lbm" id="b_lbm">{options}</select></td></tr>',
        '<tr><td>Timeout:</td><td><input name="b_tmo" id="b_tmo" type="text" '
        f'value="{b.timeout:.0f}"></td></tr>',
        '<tr><td>Failover Attempts:</td><td><input name="b_max" id="b_max" type="text" '
        f'value="{b.maxattempts}"></td></tr>',
        f"<tr><td>Disable Failover:</td>{_radio('b_sforce', b.nofailover)}</tr>",
        '<tr><td>Sticky Session:</td><td><input name="b_ss" id="b_ss" size="64" type="text" '
        f"value=\"{e(_sticky(b))}\">&nbsp;&nbsp;&nbsp;&nbsp;(Use '-' to delete)</td></tr>",
        '<tr><td colspan="2"><input type="submit" value="Submit"></td></tr>',
        "</table>",
        _hidden(b),
        "</form>\n<hr>",
    ]


def render_page(
    snap: Snapshot,
    *,
    host: str,
    balancer: str | None = None,
    member: str | None = None,
    message: str | None = None,
    path: str = PAGE_PATH,
) -> bytes:
    """The whole page; ``balancer``/``member`` select the edit form shown under the tables."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Balancer Manager</title>',
        f"<style>\n{_STYLE}</style>\n</head>",
        f"<body><h1>Load Balancer Manager for {e(host)}</h1>",
        f"<dl><dt>Server Version: Apache/{APACHE_VERSION} "
        f"(compatible; ajpbalancer/{e(snap.version)})</dt>",
        "<dt>Balancer changes will "
        + ("" if snap.state.persist else "NOT ")
        + "be persisted on restart.</dt>",
    ]
    if snap.state.store is not None:
        health = "connected" if snap.state.connected else "not connected"
        if snap.state.error:
            health += f" ({snap.state.error})"
        out.append(f"<dt>Runtime state: {e(snap.state.store)}, {e(health)}</dt>")
    out[-1] += "</dl>"
    if message:
        out.append(f'<p class="message">{e(message)}</p>')
    for b in snap.balancers:
        out += _balancer_table(b, path)
        out += _members_table(b.members, b, path)
    if snap.workers:
        out.append("<hr>\n<h3>Workers of ProxyPass rules</h3>")
        out += _members_table(snap.workers, None)
    out.append("<hr>")
    selected = None if balancer is None else snap.balancer(balancer)
    if selected is not None:
        chosen = None if member is None else selected.member(member)
        out += _balancer_form(selected) if chosen is None else _member_form(selected, chosen)
    out.append("</body></html>\n")
    return "\n".join(out).encode("utf-8")
