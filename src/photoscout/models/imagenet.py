"""ImageNet-1k class names, and a small label hierarchy from them to photoscout's categories.

The sets group WordNet subtrees by hand: every class 0-397 is an animal (WordNet's organism subtree), 923-969
are dishes, foods and drinks (less 'cup'), and the device, vehicle, document and people classes are listed by name.
"""

from __future__ import annotations

import functools
from importlib import resources

_ELECTRONICS = [
    "cellular telephone", "desktop computer", "dial telephone", "digital clock", "digital watch", "hand-held computer",
    "iPod", "joystick", "laptop", "loudspeaker", "microphone", "modem", "monitor", "mouse", "notebook", "oscilloscope",
    "pay-phone", "Polaroid camera", "printer", "projector", "radio", "reflex camera", "remote control", "screen",
    "cassette player", "CD player", "computer keyboard", "tape player", "television", "typewriter keyboard",
    "hard disc", "space bar", "switch",
]
_VEHICLES = [
    "aircraft carrier", "airliner", "airship", "ambulance", "amphibian", "beach wagon", "bicycle-built-for-two",
    "bullet train", "cab", "canoe", "catamaran", "container ship", "convertible", "fireboat", "fire engine",
    "freight car", "garbage truck", "go-kart", "golfcart", "gondola", "half track", "harvester", "horse cart", "jeep",
    "jinrikisha", "lifeboat", "limousine", "liner", "minibus", "minivan", "Model T", "moped", "motor scooter",
    "mountain bike", "moving van", "oxcart", "paddlewheel", "passenger car", "pickup", "pirate", "police van", "racer",
    "recreational vehicle", "school bus", "schooner", "snowmobile", "snowplow", "space shuttle", "speedboat",
    "sports car", "steam locomotive", "streetcar", "submarine", "tank", "tow truck", "tractor", "trailer truck",
    "tricycle", "trimaran", "trolleybus", "unicycle", "warplane", "wreck", "yawl", "electric locomotive",
    "car wheel", "grille", "disk brake", "car mirror",
]
_DOCUMENTS = ["binder", "envelope", "comic book", "crossword puzzle", "book jacket", "menu", "packet"]
_SCREENSHOTS = ["web site"]
_PEOPLE = ["ballplayer", "groom", "scuba diver"]
# Classes whose photos usually show text: OCR is worth running on them.
_TEXTUAL = _DOCUMENTS + _SCREENSHOTS + [
    "monitor", "screen", "television", "scoreboard", "street sign", "carton", "pill bottle", "slot", "digital clock",
    "oscilloscope", "notebook", "laptop", "desktop computer", "hand-held computer", "rule", "bookshop", "library",
    "prayer rug", "jersey", "sweatshirt", "vending machine", "cash machine", "parking meter",
]


@functools.cache
def class_names() -> list[list[str]]:
    """For each of the 1,000 classes, its WordNet lemmas (first = display name)."""
    text = (resources.files("photoscout.models") / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    names = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        _index, _wnid, lemmas, _gloss = line.split("\t")
        names.append([n.strip() for n in lemmas.split(",")])
    if len(names) != 1000:
        raise ValueError("imagenet_classes.tsv must list 1,000 classes")
    return names


@functools.cache
def glosses() -> list[str]:
    """For each of the 1,000 classes, its WordNet definition ("freshwater dace-like game fish of Europe...")."""
    text = (resources.files("photoscout.models") / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    out = [line.split("\t")[3].strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(out) != 1000:
        raise ValueError("imagenet_classes.tsv must list 1,000 classes")
    return out


def label_texts(hierarchy: bool = False) -> list[str]:
    """The text embedded for each class: its first two names ("notebook, notebook computer"); with ``hierarchy``
    followed by the photoscout category the class belongs to ("notebook, notebook computer (electronics)"), so the
    class vectors of one category move closer to each other and to the category's name."""
    texts = [", ".join(n[:2]) for n in class_names()]
    if hierarchy:
        parent: dict[int, str] = {}
        for category, indices in category_classes().items():
            for i in indices:
                parent.setdefault(i, category)
        texts = [f"{t} ({parent[i]})" if i in parent else t for i, t in enumerate(texts)]
    return texts


def _indices(names: list[str]) -> list[int]:
    first = {n[0]: i for i, n in enumerate(class_names())}
    missing = [n for n in names if n not in first]
    if missing:
        raise ValueError(f"not ImageNet class names: {missing}")
    return sorted(first[n] for n in names)


@functools.cache
def category_classes() -> dict[str, list[int]]:
    food = [i for i in range(923, 970) if class_names()[i][0] != "cup"]
    return {
        "animals": list(range(0, 398)),
        "food": food,
        "electronics": _indices(_ELECTRONICS),
        "vehicles": _indices(_VEHICLES),
        "documents": _indices(_DOCUMENTS),
        "screenshots": _indices(_SCREENSHOTS),
        "people": _indices(_PEOPLE),
    }


@functools.cache
def textual_classes() -> list[int]:
    return _indices(sorted(set(_TEXTUAL)))
