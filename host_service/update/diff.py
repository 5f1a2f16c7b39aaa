"""What an update changes, side by side: release fields, images, the config bundle, charts,
profile values (line by line) and which values ConfigMaps a re-render would change. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from host_service.intent import SetupIntent
from host_service.release import ChartRef, Release, values_configmap_name
from host_service.values import render_all

Row = dict[str, Any]


def _row(name: str, running: str | None, candidate: str | None) -> Row:
    return {
        "name": name,
        "running": running,
        "candidate": candidate,
        "changed": running != candidate,
    }


def _rows(running: Mapping[str, str], candidate: Mapping[str, str]) -> list[Row]:
    return [_row(k, running.get(k), candidate.get(k)) for k in sorted({*running, *candidate})]


def side_by_side(left: str, right: str) -> list[list[Any]]:
    """Lines as ``[tag, left_no, left, right_no, right]``; tag is equal, replace, delete or
    insert (difflib's opcodes, one row per line)."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[list[Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            rows.append(
                [
                    tag,
                    i + 1 if i < i2 else None,
                    a[i] if i < i2 else "",
                    j + 1 if j < j2 else None,
                    b[j] if j < j2 else "",
                ]
            )
    return rows


def release_diff(
    running: Release | None,
    candidate: Release,
    *,
    running_digest: str | None,
    candidate_digest: str,
    intent: SetupIntent | None,
    workloads: str,
) -> dict[str, Any]:
    """Every difference between the running release and ``candidate``."""
    images_now = {k: v.reference for k, v in (running.images if running else {}).items()}
    images_new = {k: v.reference for k, v in candidate.images.items()}
    sections: dict[str, list[Row]] = {
        "release": [
            _row("version", running.version if running else None, candidate.version),
            _row("channel", running.channel if running else None, candidate.channel),
            _row("manifest digest", running_digest, candidate_digest),
            _row(
                "values profile",
                running.values_profile if running else None,
                candidate.values_profile,
            ),
        ],
        "images": [
            *_rows(images_now, images_new),
            _row(
                "control plane",
                running.control_plane.reference if running else None,
                candidate.control_plane.reference,
            ),
        ],
        "config bundle": [
            _row(
                "repository",
                running.config.repository if running else None,
                candidate.config.repository,
            ),
            _row("digest", running.config.digest if running else None, candidate.config.digest),
        ],
        "charts": _rows(_charts(running.charts) if running else {}, _charts(candidate.charts)),
    }
    values_now = dict(running.profile_values) if running else {}
    profile_values: list[Row] = []
    for name in sorted({*values_now, *candidate.profile_values}):
        before, after = values_now.get(name, ""), candidate.profile_values.get(name, "")
        profile_values.append(
            {"name": name, "changed": before != after, "lines": side_by_side(before, after)}
        )
    configmaps: list[Row] = []
    if intent is not None:
        now = render_all(running, intent, workloads=workloads) if running else {}
        new = render_all(candidate, intent, workloads=workloads)
        configmaps = [
            {"name": values_configmap_name(s), "changed": now.get(s) != new.get(s)} for s in new
        ]
    changed = sum(r["changed"] for rows in sections.values() for r in rows)
    changed += sum(v["changed"] for v in profile_values)
    return {
        "sections": sections,
        "profile_values": profile_values,
        "configmaps": configmaps,
        "changes": changed,
    }


def _charts(charts: Mapping[str, ChartRef]) -> dict[str, str]:
    """A chart as the diff shows it: its version and the digest it is pinned by."""
    return {name: f"{ref.version} ({ref.digest})" for name, ref in charts.items()}
