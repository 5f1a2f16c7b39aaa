"""tests.mutation.report: mutmut's verdicts grouped per module, equivalents set apart."""

from __future__ import annotations

import pytest

from tests.mutation.report import module_of, parse_equivalents, parse_results, render, score

LISTING = """\
    isobuild.iso.grub.x_add_kernel_args__mutmut_1: killed
    isobuild.iso.grub.x_add_kernel_args__mutmut_2: survived
    isobuild.iso.grub.x_add_kernel_args__mutmut_3: timeout
    isobuild.iso.grub.xǁMenuEntryǁtitle__mutmut_1: no tests
    host_service.steps.reconcile.x_run__mutmut_7: killed
    host_service.steps.reconcile.x_run__mutmut_8: survived
    host_service.steps.reconcile.x_run__mutmut_9: not checked
"""


def test_module_of_strips_the_function_and_the_mutant_number() -> None:
    assert module_of("isobuild.iso.grub.x_add_kernel_args__mutmut_5") == "isobuild.iso.grub"
    assert module_of("isobuild.iso.grub.xǁMenuEntryǁtitle__mutmut_1") == "isobuild.iso.grub"
    assert module_of("host_service.steps.reconcile.x_run__mutmut_9") == (
        "host_service.steps.reconcile"
    )


def test_parse_results_reads_every_line() -> None:
    results = parse_results(LISTING)
    assert len(results) == 7
    assert results["isobuild.iso.grub.xǁMenuEntryǁtitle__mutmut_1"] == "no tests"


def test_score_counts_live_mutants_and_sets_equivalents_apart() -> None:
    results = parse_results(LISTING)
    equivalent = {"host_service.steps.reconcile.x_run__mutmut_8": "same output"}
    grub, reconcile = sorted(score(results, equivalent), key=lambda s: s.module)[::-1]
    assert (grub.module, grub.killed, len(grub.live), grub.equivalent) == (
        "isobuild.iso.grub", 2, 2, 0,
    )  # fmt: skip
    assert grub.score == 0.5
    assert (reconcile.killed, reconcile.live, reconcile.equivalent) == (1, (), 1)
    assert reconcile.other == {"not checked": 1}
    text = render([grub, reconcile], results)
    assert "**Overall: 3/5 = 60.0%**" in text
    assert "- `isobuild.iso.grub.x_add_kernel_args__mutmut_2` (survived)" in text


def test_an_equivalent_needs_a_reason() -> None:
    assert parse_equivalents("# comment\n\na.x_f__mutmut_1  # prints only\n") == {
        "a.x_f__mutmut_1": "prints only"
    }
    with pytest.raises(ValueError, match="needs a why"):
        parse_equivalents("a.x_f__mutmut_1\n")
