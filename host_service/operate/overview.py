"""The status at a glance: one headline and state, progress through the bootstrap, what is
running now, every layer and every blocker. Pure: the bootstrap view and the monitor's
layers in, the ``/api/overview`` document out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from host_service.operate.layers import worst
from host_service.operate.runtime_blockers import RuntimeBlocker

STEP_WORDS: Mapping[str, str] = {
    "pending": "Waiting",
    "running": "In progress",
    "done": "Done",
    "blocked": "Stopped",
}
STEP_HEALTH: Mapping[str, str] = {
    "pending": "waiting",
    "running": "progress",
    "done": "ok",
    "blocked": "bad",
}


def _headline(
    status: Mapping[str, Any],
    layers: Sequence[Mapping[str, Any]],
    blockers: Sequence[RuntimeBlocker],
    position: str,
) -> tuple[str, str, str]:
    """(state, headline, detail)."""
    phase = status["phase"]
    if phase == "awaiting-setup":
        return "waiting", "Not set up yet", "Enter the app URL and the release in Setup to begin."
    if phase == "running":
        return (
            "progress",
            f"Setting up: {position}",
            "The appliance installs itself; this page follows it.",
        )
    if phase == "blocked":
        blocker = status.get("blocker") or {}
        return "bad", f"Setup stopped at {position}", str(blocker.get("message") or "")
    if blockers:
        more = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
        return "bad", "Needs attention", blockers[0].message + more
    health = worst([str(layer["health"]) for layer in layers])
    troubled = [
        str(layer["title"]) for layer in layers if layer["health"] in ("bad", "unknown", "warn")
    ]
    if troubled:
        return "warn", "Running, with problems", "See " + ", ".join(troubled) + " below."
    if health in ("progress", "waiting"):
        return "progress", "Applying the release", "Flux and Helm are rolling it out."
    return "ok", "Running normally", "Every layer is healthy."


def _running_now(status: Mapping[str, Any], position: str) -> str:
    update = (status.get("update") or {}).get("run") or {}
    if update.get("phase") == "running":
        return f"Update {update.get('id')} is running (see Updates)."
    if status.get("running"):
        current = next((s for s in status["steps"] if s["status"] == "running"), None)
        if current is not None:
            message = f": {current['message']}" if current.get("message") else ""
            return f"{position}{message}"
    phase = status.get("phase")
    if phase == "awaiting-setup":
        return "Nothing yet: the appliance waits for its setup inputs."
    if phase == "blocked":
        return "Nothing: setup waits where it stopped until you retry."
    return "Nothing is being changed: the appliance is keeping the release running."


def overview(
    status: Mapping[str, Any],
    layers: Sequence[Mapping[str, Any]],
    blockers: Sequence[RuntimeBlocker],
    ages: Mapping[str, float | None],
    recent_warnings: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    steps = list(status["steps"])
    done = sum(1 for s in steps if s["status"] == "done")
    at = next((i for i, s in enumerate(steps) if s["status"] != "done"), len(steps) - 1)
    position = f"step {at + 1} of {len(steps)}, {steps[at]['title']}" if steps else ""
    state, headline, detail = _headline(status, layers, blockers, position)
    bootstrap_blocker = status.get("blocker")
    if bootstrap_blocker:
        title = next((s["title"] for s in steps if s["name"] == bootstrap_blocker["step"]), "")
        bootstrap_blocker = {**bootstrap_blocker, "title": title, "fix": "/setup"}
    return {
        "state": state,
        "headline": headline,
        "detail": detail,
        "running_now": _running_now(status, position),
        "phase": status["phase"],
        "progress": {"done": done, "total": len(steps), "at": position},
        "steps": [
            {
                **s,
                "status_text": STEP_WORDS.get(s["status"], s["status"]),
                "health": STEP_HEALTH.get(s["status"], "unknown"),
            }
            for s in steps
        ],
        "bootstrap_blocker": bootstrap_blocker,
        "blockers": [b.to_json() for b in blockers],
        "layers": list(layers),
        "release": status.get("release"),
        "setup": status.get("setup"),
        "app_url": status.get("app_url"),
        "ages": dict(ages),
        "warnings": list(recent_warnings),
    }
