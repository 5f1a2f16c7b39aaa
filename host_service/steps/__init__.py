"""The bootstrap steps, one module each; ``IMPLEMENTATIONS`` maps the ``Step`` enum to them.

Every step has ``probe(ctx) -> bool`` (True: its work is already done in reality; nothing is
changed) and ``run(ctx) -> None`` (idempotent; raises ``StepFailed`` with a blocker).
Steps never import each other: they share ``context`` (what a step gets), ``blockers`` (how
a failure is worded) and ``resolved`` (the release the run resolved).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from host_service.state import STEPS, Step
from host_service.steps import (
    apply,
    flux,
    k3s,
    preflight,
    reconcile,
    release,
    source,
    storage,
    values,
)
from host_service.steps.context import StepContext


@dataclass(frozen=True)
class StepImplementation:
    probe: Callable[[StepContext], bool]
    run: Callable[[StepContext], None]


IMPLEMENTATIONS: Mapping[Step, StepImplementation] = {
    Step.PREFLIGHT: StepImplementation(preflight.probe, preflight.run),
    Step.K3S: StepImplementation(k3s.probe, k3s.run),
    Step.STORAGE: StepImplementation(storage.probe, storage.run),
    Step.FLUX: StepImplementation(flux.probe, flux.run),
    Step.RELEASE: StepImplementation(release.probe, release.run),
    Step.VALUES: StepImplementation(values.probe, values.run),
    Step.APPLY: StepImplementation(apply.probe, apply.run),
    Step.SOURCE: StepImplementation(source.probe, source.run),
    Step.RECONCILE: StepImplementation(reconcile.probe, reconcile.run),
}
assert tuple(IMPLEMENTATIONS) == STEPS, "every step needs an implementation, in order"
