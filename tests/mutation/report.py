"""`make mutate`'s report: mutmut's verdicts per module, equivalents set apart, the score.

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant) and
``tests/mutation/equivalent.txt`` (``<mutant name>  # why it cannot change behaviour``), and
writes a Markdown report of the score per module and every survivor.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EQUIVALENT = HERE / "equivalent.txt"
TARGET = 0.90
LINE = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>[\w ]+?)\s*$")
# mutmut's verdicts: the test suite failed (killed), or it did not and the mutant lives.
KILLED = frozenset({"killed", "timeout", "caught by type check"})
LIVE = frozenset({"survived", "no tests"})


@dataclass(frozen=True)
class ModuleScore:
    module: str
    killed: int
    live: tuple[str, ...]  # survivors and mutants no test runs
    equivalent: int
    other: Counter[str]

    @property
    def scored(self) -> int:
        return self.killed + len(self.live)

    @property
    def score(self) -> float:
        return self.killed / self.scored if self.scored else 1.0


def module_of(mutant: str) -> str:
    """``isobuild.iso.grub.x_add_kernel_args__mutmut_5`` → ``isobuild.iso.grub``."""
    head = mutant.rsplit("__mutmut_", 1)[0]
    parts = head.split(".")
    while parts and not parts[-1].startswith(("x_", "x\u01c1")):
        parts.pop()
    return ".".join(parts[:-1]) if parts else head


def parse_results(text: str) -> dict[str, str]:
    return {m["name"]: m["status"] for m in map(LINE.match, text.splitlines()) if m}


def parse_equivalents(text: str) -> dict[str, str]:
    """Mutant name → why it is equivalent; a line without a reason is refused."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, why = line.partition("#")
        if not sep or not why.strip():
            raise ValueError(f"{EQUIVALENT.name}:{number}: every equivalent mutant needs a why")
        found[name.strip()] = why.strip()
    return found


def score(results: Mapping[str, str], equivalents: Mapping[str, str]) -> list[ModuleScore]:
    by_module: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, status in results.items():
        by_module[module_of(name)].append((name, status))
    scores = []
    for module, mutants in sorted(by_module.items()):
        killed = sum(1 for n, s in mutants if s in KILLED and n not in equivalents)
        live = tuple(sorted(n for n, s in mutants if s in LIVE and n not in equivalents))
        other = Counter(s for n, s in mutants if s not in KILLED | LIVE)
        eq = sum(1 for n, _ in mutants if n in equivalents)
        scores.append(ModuleScore(module, killed, live, eq, other))
    return scores


def render(scores: Iterable[ModuleScore], results: Mapping[str, str]) -> str:
    scores = list(scores)
    killed = sum(s.killed for s in scores)
    scored = sum(s.scored for s in scores)
    lines = [
        "# Mutation testing report",
        "",
        "| module | killed | live | equivalent | score |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in scores:
        lines.append(
            f"| `{s.module}` | {s.killed} | {len(s.live)} | {s.equivalent} | {s.score:.1%} |"
        )
    total = killed / scored if scored else 1.0
    lines += ["", f"**Overall: {killed}/{scored} = {total:.1%}** (target {TARGET:.0%})", ""]
    for s in scores:
        if s.live:
            lines.append(f"## Live mutants in `{s.module}`")
            lines += [f"- `{name}` ({results[name]})" for name in s.live]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutmut", default="mutmut", help="the mutmut program")
    parser.add_argument("--output", type=Path, default=Path("mutants/report.md"))
    args = parser.parse_args(argv)
    listing = subprocess.run(
        [args.mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    results = parse_results(listing)
    if not results:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 2
    equivalents = parse_equivalents(EQUIVALENT.read_text() if EQUIVALENT.exists() else "")
    unknown = sorted(set(equivalents) - set(results))
    report = render(score(results, equivalents), results)
    if unknown:
        report += "\nListed as equivalent but no longer generated:\n"
        report += "".join(f"- `{name}`\n" for name in unknown)
    args.output.write_text(report)
    print(report)
    killed = sum(1 for n, s in results.items() if s in KILLED and n not in equivalents)
    live = sum(1 for n, s in results.items() if s in LIVE and n not in equivalents)
    return 0 if killed / max(1, killed + live) >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
