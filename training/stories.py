"""A procedural generator of simple children's stories: the corpus of the embedded model pair.

Every story is built from plain English sentences with many interchangeable phrasings, so a
small model trained on it writes grammatical English with no licence question about the text.
About half of the stories open with a request naming two words ("Write a short bedtime story
with the words elephant and cake.") and then use both words, so that requests like the seed's
prompts lead into a story that contains them.

Usage:  python -m training.stories --count 5 --seed 1
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

NAMES = (
    "Lily Max Sue Tom Anna Ben Mia Sam Rosa Leo Ella Finn Nora Jack Ivy Hugo Maya Owen Lucy Noah "
    "Emma Oscar Zoe Theo Clara Eli Ruby Milo Alice Jonah Grace Felix Hannah Toby Lena Kit Poppy "
    "Oliver Daisy Henry"
).split()
KINDS = "girl boy bunny bear fox kitten puppy mouse owl duck lamb pig frog squirrel hedgehog".split()
PEOPLE = {"girl", "boy"}
TRAITS = ("little kind brave shy clever happy curious gentle quiet cheerful sleepy funny careful friendly busy").split()
PLACES = [
    ("a small village", "village"),
    ("a green forest", "forest"),
    ("a sunny farm", "farm"),
    ("a quiet town", "town"),
    ("a big garden", "garden"),
    ("a house by the sea", "beach"),
    ("a warm jungle", "jungle"),
    ("a cozy house on a hill", "hill"),
    ("a snowy valley", "valley"),
    ("an old castle", "castle"),
    ("a flower meadow", "meadow"),
    ("a busy city", "city"),
    ("a little island", "island"),
    ("a tall tree house", "tree house"),
]
ANIMALS = (
    "elephant dog cat rabbit horse cow goat turtle giraffe lion tiger monkey penguin whale "
    "dolphin bird butterfly snail dragon unicorn zebra kangaroo panda parrot chicken bee fish "
    "hippo camel deer"
).split()
THINGS = (
    "cake sausage ball kite hat book apple cookie boat balloon drum blanket lamp key map "
    "bucket shell flower carrot pie sandwich basket umbrella bicycle star candle cup "
    "spoon sock crayon teddy banana pear orange bread cheese honey jam ribbon shoe "
    "scarf button feather stone wagon box train robot doll trumpet guitar pillow"
).split()
FOODS = set("cake sausage apple cookie pie sandwich carrot banana pear orange bread cheese honey jam".split())
FRIEND_NAMES = "Bella Pip Coco Rex Toto Button Sunny Pepper Biscuit Maple Ziggy Bubbles".split()
COLORS = "red blue green yellow purple pink orange brown white golden silver".split()
WEATHER = [
    "The sun was shining",
    "It was a windy morning",
    "It was a rainy afternoon",
    "The sky was bright and blue",
    "It was a cold winter day",
    "It was a warm summer evening",
    "Soft snow was falling",
    "The morning was calm and bright",
]
FEELINGS_GOOD = "happy glad proud excited thankful warm".split()
FEELINGS_BAD = "sad worried scared lonely upset tired".split()
MORALS = [
    "sharing makes everyone happy",
    "a good friend is worth more than gold",
    "being brave is not the same as not being scared",
    "it is good to ask for help",
    "kindness always comes back to you",
    "patience helps you do hard things",
    "working together makes a job easy",
    "it is fine to make mistakes when you learn from them",
    "telling the truth is always the right thing",
    "every day is better with a friend",
]
REQUESTS = [
    "Write a short bedtime story with the words {a} and {b}.",
    "Write a short bedtime story containing the words {a} and {b}.",
    "Generate a short bedtime story containing the words {a} and {b}.",
    "generate short bed time story containing word {a} and {b}",
    "Tell me a bedtime story about a {a} and a {b}.",
    "Please write a story for children with the words {a} and {b}.",
    "Write a story that uses the words {a} and {b}.",
    "Can you tell a short story with a {a} and a {b}?",
]
OPENINGS = [
    "Once upon a time, there was a {trait} {kind} named {name}.",
    "Once upon a time, in {place}, there lived a {trait} {kind} called {name}.",
    "There was once a {trait} {kind} named {name}.",
    "Long ago, in {place}, lived a {trait} {kind} named {name}.",
    "One day, a {trait} {kind} named {name} woke up early.",
]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@dataclass
class Cast:
    """The slots one story fills: who, where, with whom and with what."""

    name: str
    kind: str
    trait: str
    place: str
    place_short: str
    he: str
    his: str
    him: str
    friend: str  # an animal word, e.g. "elephant"
    friend_name: str
    thing: str  # an object word, e.g. "cake"
    color: str


def pronouns(kind: str, rng: random.Random) -> tuple[str, str, str]:
    if kind == "boy" or (kind not in PEOPLE and rng.random() < 0.5):
        return "he", "his", "him"
    return "she", "her", "her"


def cap(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def opening(c: Cast, rng: random.Random) -> list[str]:
    template = rng.choice(OPENINGS)
    lines = [template.format(trait=c.trait, kind=c.kind, name=c.name, place=c.place)]
    if "{place}" not in template and rng.random() < 0.8:
        lines.append(f"{cap(c.he)} lived in {c.place}.")
    lines.append(
        rng.choice(
            [
                f"{c.name} loved to play outside every day.",
                f"{c.name} liked to sing songs and look at the sky.",
                f"Every morning, {c.name} said hello to the birds.",
                f"{cap(c.he)} had {article(c.color)} {c.color} {c.thing} that {c.he} liked very much.",
                f"{cap(c.his)} favorite thing in the world was {article(c.color)} {c.color} {c.thing}.",
            ]
        )
    )
    return lines


def meet_friend(c: Cast, rng: random.Random) -> list[str]:
    return [
        rng.choice(
            [
                f"One day, {c.name} met {article(c.friend)} {c.friend} named {c.friend_name}.",
                f"One morning, {c.name} saw {article(c.friend)} {c.friend} near the {c.place_short}.",
                f"Near the {c.place_short} lived a big {c.friend} called {c.friend_name}.",
                f"{c.name} had a best friend, {article(c.friend)} {c.friend} named {c.friend_name}.",
            ]
        ),
        rng.choice(
            [
                f"The {c.friend} was {rng.choice(FEELINGS_BAD)} because it had no one to play with.",
                f'The {c.friend} smiled and said, "Hello, {c.name}! Do you want to play?"',
                f"{c.name} and the {c.friend} became good friends right away.",
                f"The {c.friend} was very big, but it was also very gentle.",
            ]
        ),
    ]


def plot_lost(c: Cast, rng: random.Random) -> list[str]:
    spot = rng.choice(
        [
            "under the bed",
            "behind a tree",
            "in the tall grass",
            "near the river",
            "inside an old box",
            "on top of the hill",
            "under a big leaf",
        ]
    )
    return [
        f"{rng.choice(WEATHER)} when {c.name} looked for {c.his} {c.thing}, but it was gone.",
        f'{c.name} felt {rng.choice(FEELINGS_BAD)}. "Where is my {c.thing}?" {c.he} asked.',
        f'The {c.friend} said, "Do not worry. I will help you look for it."',
        f"They looked in the house and in the garden. They looked {rng.choice(['high', 'far'])} and low.",
        f"At last, the {c.friend} found the {c.thing} {spot}.",
        f"{c.name} was so {rng.choice(FEELINGS_GOOD)} that {c.he} gave the {c.friend} a big hug.",
    ]


def plot_share(c: Cast, rng: random.Random) -> list[str]:
    verb = "ate" if c.thing in FOODS else "played with"
    return [
        f"{rng.choice(WEATHER)}, and {c.name} had a {c.thing} all for {c.him}self.",
        f'The {c.friend} looked at the {c.thing} and said, "That looks nice. Can I have some?"',
        f"At first, {c.name} did not want to share.",
        f"Then {c.he} saw that the {c.friend} was {rng.choice(FEELINGS_BAD)}.",
        f'{c.name} said, "Let us share the {c.thing}. It is more fun together."',
        f"They {verb} the {c.thing} together and laughed all afternoon.",
    ]


def plot_bake(c: Cast, rng: random.Random) -> list[str]:
    treat = c.thing if c.thing in FOODS else "cake"
    return [
        f"One day, {c.name} wanted to make a {treat} for {c.his} friend, the {c.friend}.",
        f"{cap(c.he)} got flour, milk, eggs and a little bit of sugar.",
        f"{c.name} mixed everything in a big bowl and put it in the oven.",
        f"Soon the {treat} smelled sweet and warm.",
        f'When the {c.friend} came to visit, {c.name} said, "Surprise! I made this for you."',
        f'The {c.friend} was so {rng.choice(FEELINGS_GOOD)}. "This is the best {treat} ever!" it said.',
    ]


def plot_brave(c: Cast, rng: random.Random) -> list[str]:
    fear = rng.choice(["the dark", "the big river", "the loud thunder", "the tall hill", "the deep woods"])
    return [
        f"{c.name} was afraid of {fear}.",
        f"One evening, the {c.friend} could not find its way home, and it had to pass {fear}.",
        f'{c.name} took {c.his} {c.thing} and said, "I will go with you."',
        f"{cap(c.his)} legs were shaking, but {c.he} kept walking.",
        f"Step by step, they went past {fear} together.",
        f"When they got home, {c.name} felt {rng.choice(FEELINGS_GOOD)}. {cap(c.he)} was not afraid anymore.",
    ]


def plot_trip(c: Cast, rng: random.Random) -> list[str]:
    where = rng.choice(["the beach", "the park", "the lake", "the mountain", "the zoo", "the market", "the fair"])
    seen = rng.choice(ANIMALS)
    return [
        f"One morning, {c.name} and the {c.friend} went on a trip to {where}.",
        f"{c.name} packed {c.his} {c.thing} in a little bag.",
        f"At {where}, they saw {article(seen)} {seen} and many {rng.choice(COLORS)} flowers.",
        "They ran, they jumped, and they played games until the sun went down.",
        f'On the way home, the {c.friend} said, "Today was a wonderful day."',
        f"{c.name} smiled and held {c.his} {c.thing} close.",
    ]


def plot_help(c: Cast, rng: random.Random) -> list[str]:
    trouble = rng.choice(
        [
            "was stuck in the mud",
            "could not reach the high branch",
            "had hurt its foot",
            "was lost in the rain",
            "could not get over the fence",
        ]
    )
    return [
        f"{rng.choice(WEATHER)}. {c.name} heard a small cry.",
        f"It was the {c.friend}! The {c.friend} {trouble}.",
        f"{c.name} thought for a moment. Then {c.he} had an idea.",
        f"{cap(c.he)} used {c.his} {c.thing} to help the {c.friend}.",
        f'"Thank you, {c.name}!" said the {c.friend}. "You are a true friend."',
        f"From that day on, the {c.friend} and {c.name} played together every day.",
    ]


def plot_party(c: Cast, rng: random.Random) -> list[str]:
    return [
        f"It was the {c.friend}'s birthday, and {c.name} wanted to give it a present.",
        f"{c.name} had no money, so {c.he} made a {c.color} {c.thing} all by {c.him}self.",
        "At the party, there were balloons, games and a big cake.",
        f"The {c.friend} opened the present and saw the {c.thing}.",
        f'"I love it!" said the {c.friend}. "You made it just for me."',
        f"Everyone sang and danced, and {c.name} felt {rng.choice(FEELINGS_GOOD)} inside.",
    ]


PLOTS = (plot_lost, plot_share, plot_bake, plot_brave, plot_trip, plot_help, plot_party)


def ending(c: Cast, rng: random.Random) -> list[str]:
    lines = [
        rng.choice(
            [
                f"That night, {c.name} went to bed with a smile.",
                f"When the moon came up, {c.name} and the {c.friend} said good night.",
                f"Soon it was time to sleep, and {c.name} closed {c.his} eyes.",
                f"The stars came out, and {c.name} fell fast asleep.",
            ]
        )
    ]
    if rng.random() < 0.6:
        lines.append(f"{c.name} learned that {rng.choice(MORALS)}.")
    lines.append(rng.choice(["The end.", "And they lived happily ever after.", "Good night."]))
    return lines


def make_cast(rng: random.Random, friend: str | None, thing: str | None) -> Cast:
    kind = rng.choice(KINDS)
    he, his, him = pronouns(kind, rng)
    place, short = rng.choice(PLACES)
    return Cast(
        name=rng.choice(NAMES),
        kind=kind,
        trait=rng.choice(TRAITS),
        place=place,
        place_short=short,
        he=he,
        his=his,
        him=him,
        friend=friend or rng.choice(ANIMALS),
        friend_name=rng.choice(FRIEND_NAMES),
        thing=thing or rng.choice(THINGS),
        color=rng.choice(COLORS),
    )


def story(rng: random.Random, with_request: bool | None = None) -> str:
    """One story; with a request line naming two words that the story then uses."""
    if with_request is None:
        with_request = rng.random() < 0.5
    friend, thing = rng.choice(ANIMALS), rng.choice(THINGS)
    cast = make_cast(rng, friend, thing)
    body = opening(cast, rng) + meet_friend(cast, rng) + rng.choice(PLOTS)(cast, rng) + ending(cast, rng)
    text = " ".join(body)
    if with_request:
        request = rng.choice(REQUESTS).format(a=friend, b=thing)
        text = request + "\n" + text
    return text


def corpus(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [story(rng) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for text in corpus(args.count, args.seed):
        print(text, end="\n\n")


if __name__ == "__main__":
    main()
