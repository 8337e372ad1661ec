"""Docker-style random names: ``adjective_surname``."""

from __future__ import annotations

import random

LEFT = ("admiring", "brave", "clever", "dazzling", "eager", "festive", "gallant", "happy", "jolly",
        "keen", "lucid", "modest", "nifty", "optimistic", "peaceful", "quirky", "relaxed", "serene",
        "tender", "upbeat", "vibrant", "wizardly", "xenodochial", "youthful", "zealous", "bold")
RIGHT = ("turing", "hopper", "lovelace", "knuth", "ritchie", "thompson", "torvalds", "hamilton",
         "noether", "curie", "darwin", "euler", "gauss", "hypatia", "johnson", "kepler", "lamarr",
         "meitner", "newton", "pascal", "ramanujan", "shannon", "tesla", "wiles", "yalow", "zhukovsky")


def generate_name(taken: set[str]) -> str:
    for attempt in range(100):
        name = f"{random.choice(LEFT)}_{random.choice(RIGHT)}"
        if attempt > 10:
            name += str(random.randint(0, 99))
        if name not in taken:
            return name
    return f"container_{random.getrandbits(48):012x}"


__all__ = ["generate_name"]
