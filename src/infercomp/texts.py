"""Deterministic texts: simple stories of any length, for long prompts (the `long_context`
preset) and for the fixed texts whose perplexity measures what quantization does to a model.

The same seed and length give the same text on every machine (a private `random.Random`), and
the vocabulary is that of simple children's stories, which the embedded model was trained on.
"""

from __future__ import annotations

import random

NAMES = ["Lily", "Tom", "Mia", "Ben", "Sue", "Max", "Anna", "Sam"]
ANIMALS = ["dog", "cat", "bird", "elephant", "rabbit", "frog", "bear", "duck"]
THINGS = ["ball", "cake", "box", "kite", "hat", "apple", "book", "boat"]
PLACES = ["park", "garden", "forest", "house", "river", "school", "beach", "hill"]
FEELINGS = ["happy", "sad", "scared", "excited", "tired", "surprised", "proud", "kind"]

SENTENCES = [
    "One day, {name} went to the {place} with a {thing}.",
    "{name} saw a little {animal} near the {place}.",
    "The {animal} was very {feeling} and wanted to play.",
    '{name} said, "Do you want to play with my {thing}?"',
    'The {animal} smiled and said, "Yes, please!"',
    "They played with the {thing} all day long.",
    "Then the sun went down and the sky was dark.",
    "{name} felt {feeling} and went back home.",
    "Mom gave {name} a big hug and some warm milk.",
    "The next day, {name} and the {animal} met again at the {place}.",
    "They found a {thing} under a big tree.",
    "{name} shared the {thing} with the {animal}, and they were friends.",
]


def story(seed: int, words: int) -> str:
    """A story of at least `words` words, the same for the same (seed, words)."""
    rng = random.Random(seed)
    out: list[str] = []
    count = 0
    while count < words:
        pick = {
            "name": rng.choice(NAMES),
            "animal": rng.choice(ANIMALS),
            "thing": rng.choice(THINGS),
            "place": rng.choice(PLACES),
            "feeling": rng.choice(FEELINGS),
        }
        for template in SENTENCES:
            sentence = template.format(**pick)
            out.append(sentence)
            count += len(sentence.split())
            if count >= words:
                break
    return " ".join(out)


def long_prompt(seed: int, words: int) -> str:
    """A long prompt: a story to continue, then the request."""
    return story(seed, words) + " Continue the story and tell what happened next."
