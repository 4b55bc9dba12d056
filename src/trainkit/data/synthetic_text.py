"""A generated sentiment corpus, so that the text model has labelled data offline.

It is synthetic (not real reviews) and built so that no single keyword decides the label:

- negation flips a clause: "the plot was not boring" is positive;
- mixed reviews: in "the acting was great but the plot was dull" the clause after "but" (or the
  main clause after "although ...,") decides, so both polarities' words appear in every label;
- every sentiment word appears in both classes, and filler sentences add noise words.

A bag of words gets part of the way; word bigrams ("not boring", "but the") get further; the
order-dependent "but" / "although" reviews keep a ceiling below 100% for a bag of n-grams.
"""

from __future__ import annotations

import random

ASPECTS = [
    "acting",
    "plot",
    "story",
    "soundtrack",
    "direction",
    "dialogue",
    "pacing",
    "cast",
    "visuals",
    "ending",
    "script",
    "humour",
    "editing",
    "lead",
    "villain",
    "score",
]
POSITIVE = [
    "great",
    "wonderful",
    "brilliant",
    "excellent",
    "moving",
    "superb",
    "delightful",
    "gripping",
    "charming",
    "clever",
    "beautiful",
    "fun",
    "good",
    "solid",
]
NEGATIVE = [
    "terrible",
    "boring",
    "awful",
    "dull",
    "weak",
    "clumsy",
    "bland",
    "tedious",
    "predictable",
    "disappointing",
    "messy",
    "flat",
    "bad",
    "poor",
]
NEGATORS = ["not", "never", "hardly", "not at all"]
INTENSIFIERS = ["really", "very", "truly", "quite", "rather", "so", "pretty"]
FILLER = [
    "i watched it on a sunday",
    "my friend picked it",
    "the cinema was crowded",
    "we had popcorn",
    "it runs for two hours",
    "i saw the trailer last year",
    "the tickets were cheap",
    "it was raining outside",
    "my sister came along",
    "it is based on a novel",
    "the director made three films before",
    "we sat in the back row",
]
VERDICTS = {
    1: ["i would recommend it", "worth a watch", "i would see it again"],
    0: ["i would not recommend it", "not worth a watch", "i would not see it again"],
}


def _clause(rng: random.Random, label: int) -> str:
    """One opinion about one aspect with polarity `label` (1 positive, 0 negative)."""
    aspect = rng.choice(ASPECTS)
    negated = rng.random() < 0.35
    # a negated clause uses a word of the opposite polarity: "not boring" is positive
    words = POSITIVE if (label == 1) != negated else NEGATIVE
    adj = rng.choice(words)
    if negated:
        adj = f"{rng.choice(NEGATORS)} {adj}"
    elif rng.random() < 0.4:
        adj = f"{rng.choice(INTENSIFIERS)} {adj}"
    template = rng.choice(
        ["the {a} was {j}", "the {a} is {j}", "i found the {a} {j}", "the {a} felt {j}"]
    )
    return template.format(a=aspect, j=adj)


def _review(rng: random.Random, label: int) -> str:
    kind = rng.random()
    if kind < 0.35:
        parts = [_clause(rng, label)]
    elif kind < 0.55:
        parts = [f"{_clause(rng, label)} and {_clause(rng, label)}"]
    elif kind < 0.8:
        parts = [f"{_clause(rng, 1 - label)} but {_clause(rng, label)}"]
    else:
        parts = [f"although {_clause(rng, 1 - label)}, {_clause(rng, label)}"]
    for _ in range(rng.randint(0, 2)):
        parts.insert(rng.randint(0, len(parts)), rng.choice(FILLER))
    if rng.random() < 0.2:
        parts.append(rng.choice(VERDICTS[label]))
    return ". ".join(parts) + "."


def generate_reviews(n: int, seed: int) -> tuple[list[str], list[int]]:
    """`n` reviews with balanced labels (0 negative, 1 positive), the same for the same seed."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return [_review(rng, label) for label in labels], labels
