"""What learning from desk verdicts buys, on lfw_dev, with and without it in one run.

Usage: ``.venv/bin/python bench/learning.py [DATASET] [--workers N]`` (encodings cached as
in ``bench/accuracy.py``; a few minutes the first time, seconds after).

The gallery is OneEye's enrolment of lfw_dev's gallery photos, decided by the default
rule. Each identity's probes are its *visits*, in file order:

* **recall on later visits**: without learning, the share of visits 2..n accepted as the
  right person; with learning, the first visit, when it was accepted (only an accepted
  match reaches the desk) and is within ``far_template_distance`` of the person's
  templates (else it waits for review), is confirmed and added as a sighting template first;
* **false match repeat after one Not this person**: every impostor look accepted as
  somebody is marked "Not this person" once (a negative template); the same look is then
  replayed — how many are announced again;
* **genuine visits lost to negatives**: with all those negatives in place, the share of
  the probes accepted before that are no longer accepted (what the veto costs);
* **FMR with the learnt templates**: the impostors against the gallery with every
  confirmed first visit in place.

Choosing the rule (the procedure, as ``bench/accuracy.py`` chooses the decision rule):
``negative_distance`` — the largest value in the sweep printed below that loses no genuine
visit; ``far_template_distance`` — the smallest value in its sweep that holds every
*false* accepted first visit (a wrong identity confirmed by mistake) for review, so no
mistaken confirmation is learnt silently. The bench prints both sweeps and the chosen
values, which are :class:`oneeye.gallery.templates.LearningRule`'s defaults.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_DATASET, read_dataset
from accuracy import oneeye_gallery, query_encodings, split

from oneeye.gallery import DEFAULT_RULES, EnrolmentPolicy, Gallery
from oneeye.gallery.templates import LearningRule, TemplateSource


def visits(probes: list[tuple[str, np.ndarray | None]]) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for identity, enc in probes:
        if enc is not None:
            out.setdefault(identity, []).append(enc)
    return out


def accepted_as(g: Gallery, q: np.ndarray) -> str | None:
    m = g.match(q)
    return m.person_id if m else None


def learnt(g: Gallery, by_person: dict[str, list[np.ndarray]]) -> tuple[Gallery, int, int]:
    """``g`` with every accepted first visit confirmed; (gallery, learnt, held)."""
    n_learnt = n_held = 0
    for identity, encs in by_person.items():
        if identity not in g or accepted_as(g, encs[0]) is None:
            continue
        who = accepted_as(g, encs[0])
        assert who is not None
        if g.distance_to(who, encs[0]) > g.learning.far_template_distance:
            n_held += 1
            continue
        g = g.with_template(who, encs[0], TemplateSource("sighting", f"{identity}-1"))
        n_learnt += 1
    return g, n_learnt, n_held


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    photos = read_dataset(args.dataset)
    probes, imps = query_encodings(photos, args.workers)
    base, _ = oneeye_gallery(photos, EnrolmentPolicy(), DEFAULT_RULES["customers"],
                             args.workers)
    base = base.with_learning(replace(LearningRule(), enabled=True))
    by_person = visits(probes)
    impostors = [q for q in imps if q is not None]
    later = [(i, q) for i, encs in by_person.items() if i in base for q in encs[1:]]

    def recall(g: Gallery) -> tuple[int, int]:
        return sum(accepted_as(g, q) == i for i, q in later), len(later)

    def false_matches(g: Gallery) -> list[tuple[str, np.ndarray]]:
        out = []
        for q in impostors:
            who = accepted_as(g, q)
            if who is not None:
                out.append((who, q))
        return out

    print(f"dataset {args.dataset}: {len(split(photos, 'gallery'))} gallery photos, "
          f"{len(by_person)} identities with probes, {len(later)} later visits, "
          f"{len(impostors)} impostor looks")
    withl, n_learnt, n_held = learnt(base, by_person)
    r0, r1 = recall(base), recall(withl)
    fm0, fm1 = false_matches(base), false_matches(withl)
    # one "Not this person" per false match, then the same look replayed
    neg = withl
    for who, q in fm1:
        neg = neg.with_template(who, q, TemplateSource("negative", "bench"))
    repeats = sum(accepted_as(neg, q) == who for who, q in fm1)
    genuine = [(i, q) for i, encs in by_person.items() if i in base for q in encs]
    before = {k for k, (i, q) in enumerate(genuine) if accepted_as(withl, q) == i}
    lost = sum(1 for k in before if accepted_as(neg, genuine[k][1]) != genuine[k][0])

    def pct(a: int, b: int) -> str:
        return f"{a}/{b} = {100 * a / max(b, 1):.1f}%"

    print()
    print("| lfw_dev | without learning | with learning |")
    print("|---|---|---|")
    print(f"| recall on later visits (after the first is confirmed) | {pct(*r0)} | "
          f"{pct(*r1)} ({n_learnt} first visits learnt, {n_held} held for review) |")
    print(f"| FMR on the impostors | {pct(len(fm0), len(impostors))} | "
          f"{pct(len(fm1), len(impostors))} |")
    print(f"| false match repeated after one Not this person | {pct(len(fm1), len(fm1))} | "
          f"{pct(repeats, len(fm1))} |")
    print(f"| genuine visits lost to those negatives | — | {pct(lost, len(before))} |")

    print("\nnegative_distance sweep (genuine visits lost / false matches repeated):")
    for nd in (0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        g = neg.with_learning(replace(neg.learning, negative_distance=nd))
        lost_nd = sum(1 for k in before if accepted_as(g, genuine[k][1]) != genuine[k][0])
        rep = sum(accepted_as(g, q) == who for who, q in fm1)
        print(f"  {nd:.2f}: lost {lost_nd}/{len(before)}, repeated {rep}/{len(fm1)}")
    print("\nfar_template_distance sweep (first visits accepted as the wrong person held / "
          "right person held):")
    first = [(i, encs[0]) for i, encs in by_person.items()]
    firsts = [(i, q, accepted_as(base, q)) for i, q in first]
    wrong = [(q, who) for i, q, who in firsts if who is not None and who != i]
    right = [(q, who) for i, q, who in firsts if who is not None and who == i]
    for ft in (0.35, 0.4, 0.45, 0.5, 0.525):
        hw = sum(base.distance_to(who, q) > ft for q, who in wrong)
        hr = sum(base.distance_to(who, q) > ft for q, who in right)
        print(f"  {ft:.3f}: wrong held {hw}/{len(wrong)}, right held {hr}/{len(right)}")
    # extra impostors as "wrong confirmations": impostor looks accepted as someone
    far = sorted(round(base.distance_to(w, q), 3) for w, q in fm0)
    print(f"  (impostor looks accepted as someone, a mistaken Confirm would send them: "
          f"{len(fm0)}; their distances {far})")
    print(f"\nLearningRule defaults: {LearningRule()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
