"""Who may see which marker.

An admin sees every marker. A viewer sees the markers of the groups it belongs to: a group
holds exact marker ids and marker-id prefixes (``truck-*`` on the command line). A share
link sees its one marker. Nothing else sees anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
#: On the command line and in the API, a grant that ends with this is a prefix.
PREFIX_MARK = "*"


@dataclass(frozen=True)
class Access:
    """What one authenticated caller may read."""

    user: str
    role: str
    marker_ids: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    user_id: int | None = None
    via: str = "session"  # session, token, basic, share, cluster, metrics
    share_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def permits(self, marker_id: str) -> bool:
        if self.is_admin:
            return True
        return marker_id in self.marker_ids or any(marker_id.startswith(prefix) for prefix in self.prefixes)

    def keep(self, positions: Iterable[dict]) -> list[dict]:
        """The positions this caller may see (each a dict with ``marker_id``)."""
        if self.is_admin:
            return list(positions)
        return [position for position in positions if self.permits(position["marker_id"])]

    @property
    def scope_key(self) -> tuple:
        """Equal for callers who see exactly the same markers (for caching answers)."""
        return ("all",) if self.is_admin else (self.marker_ids, self.prefixes)


def access_of(user_id: int, user: str, role: str, grants: Iterable[tuple[str, bool]], via: str) -> Access:
    """``grants``: (marker id or prefix, is_prefix) of every group the user belongs to."""
    ids, prefixes = set(), set()
    for marker, is_prefix in grants:
        (prefixes if is_prefix else ids).add(marker)
    return Access(user=user, role=role, marker_ids=frozenset(ids), prefixes=tuple(sorted(prefixes)),
                  user_id=user_id, via=via)


def share_access(share_id: int, marker_id: str) -> Access:
    return Access(user=f"share:{share_id}", role=VIEWER, marker_ids=frozenset((marker_id,)), via="share",
                  share_id=share_id)


def parse_grant(text: str) -> tuple[str, bool]:
    """``truck-*`` -> ("truck-", True); ``truck-7`` -> ("truck-7", False)."""
    if text.endswith(PREFIX_MARK):
        return text[: -len(PREFIX_MARK)], True
    return text, False


def format_grant(marker: str, is_prefix: bool) -> str:
    return marker + PREFIX_MARK if is_prefix else marker


def grants_permit(grants: Iterable[str], marker_id: str) -> bool:
    """Whether a list of marker ids and prefixes (``truck-*``) names ``marker_id``."""
    for grant in grants:
        marker, is_prefix = parse_grant(grant)
        if marker_id == marker or (is_prefix and marker_id.startswith(marker)):
            return True
    return False


def visible_grants(access: Access, grants: Iterable[str]) -> list[str] | None:
    """What of ``grants`` (marker ids and prefixes ending in ``*``, such as a geofence's or a
    webhook's markers) ``access`` may see, as grants: an id it may see; a prefix whose every
    marker it may see; else the ids and narrower prefixes of its own that fall under it.
    None when it may see none of them; no grants (every marker) stay none."""
    grants = list(grants)
    if access.is_admin or not grants:
        return grants
    shown: list[str] = []
    for grant in grants:
        marker, is_prefix = parse_grant(grant)
        if not is_prefix:
            if access.permits(marker):
                shown.append(grant)
        elif any(marker.startswith(prefix) for prefix in access.prefixes):
            shown.append(grant)
        else:
            shown += sorted(m for m in access.marker_ids if m.startswith(marker))
            shown += [format_grant(p, True) for p in access.prefixes if p.startswith(marker)]
    shown = list(dict.fromkeys(shown))
    return shown or None
