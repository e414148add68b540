"""The built-in Persian minimal pairs (`builtin:fa`): verb agreement and the object marker را.

Built by rule, like the English suite, from pronouns, a few common verbs and places, in standard
orthography: Persian yeh (ی, U+06CC) and keheh (ک, U+06A9), never the Arabic yeh and kaf (U+064A,
U+0643) that some keyboards type, which a tokenizer would count as other words; and the zero-width non-joiner
(U+200C) inside a word where the orthography keeps its parts apart (می‌روم, آن‌ها, کتاب‌ها).

    subject_verb_agreement  past tense: من به خانه رفتم / *من به خانه رفتند
    present_agreement       present progressive: ما هر روز به مدرسه می‌رویم / *ما هر روز به مدرسه می‌روی
    object_marker           را right after the object: من کتاب را خواندم / *من کتاب خواندم را

Why the bad verb changes person, never number alone: Persian accepts a number mismatch in two
registers. A respected third person takes a plural verb (او / ایشان رفتند), and in speech a
polite شما often takes a singular one (شما رفتی؟). So the bad ending always names another person
(من ... رفتند, شما ... رفتم), which no register accepts.

Why not the bare present stem for the present prefix: a present verb without می‌ (او به مدرسه رود) is
literary rather than wrong, and می‌ with a past stem (او هر روز به مدرسه می‌رفت, "used to go") is
right, so the present is tested by its agreement instead.
"""

from __future__ import annotations

from itertools import product

from masklab.evaluate.pairs.pair import MinimalPair, subsample

ZWNJ = "\u200c"

# persons in the order 1sg, 2sg, 3sg, 1pl, 2pl, 3pl; both tenses share the endings except the 3sg
PRONOUNS = ["من", "تو", "او", "ما", "شما", "آن" + ZWNJ + "ها"]
PAST_ENDINGS = ["م", "ی", "", "یم", "ید", "ند"]
PRESENT_ENDINGS = ["م", "ی", "د", "یم", "ید", "ند"]
# for each person the ending of another person that its verb gets in the bad sentence (see above)
WRONG_PERSON = [5, 0, 3, 1, 0, 3]

PLACES = ["خانه", "مدرسه", "بازار", "دانشگاه", "پارک", "شهر"]
# (past stem, present stem, preposition): going and coming take به "to", sitting, sleeping and staying در "in"
VERBS = [
    ("رفت", "رو", "به"),
    ("آمد", "آی", "به"),
    ("نشست", "نشین", "در"),
    ("خوابید", "خواب", "در"),
    ("ماند", "مان", "در"),
]
HABITUAL = ["هر روز", "هر هفته", "همیشه"]  # "every day", "every week", "always": they call for the present progressive

# (past stem, objects it takes): definite objects, so را is required after them
OBJECT_VERBS = [
    ("خواند", ["کتاب", "نامه", "روزنامه", "شعر"]),
    ("نوشت", ["نامه", "داستان", "شعر"]),
    ("خرید", ["کتاب", "نان", "میوه", "روزنامه"]),
    ("دید", ["فیلم", "شهر", "پارک"]),
    ("شست", ["ظرف" + ZWNJ + "ها", "لباس" + ZWNJ + "ها"]),
    ("آورد", ["کتاب" + ZWNJ + "ها", "نان"]),
]
YESTERDAY = ["", "دیروز "]  # with and without a word between the subject and the object


def sentence(words: list[str]) -> str:
    return " ".join(words) + "."


def _pairs(phenomenon: str, sentences: list[tuple[list[str], list[str]]]) -> list[MinimalPair]:
    return [MinimalPair(sentence(good), sentence(bad), phenomenon) for good, bad in sentences]


def subject_verb_agreement() -> list[MinimalPair]:
    items = []
    for (person, pronoun), (past, _, preposition), place in product(enumerate(PRONOUNS), VERBS, PLACES):
        start = [pronoun, preposition, place]
        items.append((start + [past + PAST_ENDINGS[person]], start + [past + PAST_ENDINGS[WRONG_PERSON[person]]]))
    return _pairs("subject_verb_agreement", subsample(items, 120))


def present_agreement() -> list[MinimalPair]:
    items = []
    for (person, pronoun), habit, (_, present, preposition), place in product(
        enumerate(PRONOUNS), HABITUAL, VERBS, PLACES
    ):
        start = [pronoun, *habit.split(), preposition, place]
        prefix = "می" + ZWNJ
        items.append(
            (
                start + [prefix + present + PRESENT_ENDINGS[person]],
                start + [prefix + present + PRESENT_ENDINGS[WRONG_PERSON[person]]],
            )
        )
    return _pairs("present_agreement", subsample(items, 120))


def object_marker() -> list[MinimalPair]:
    items = []
    for (person, pronoun), before, (past, objects) in product(enumerate(PRONOUNS), YESTERDAY, OBJECT_VERBS):
        for obj in objects:
            start = [pronoun, *before.split(), obj]
            verb = past + PAST_ENDINGS[person]
            items.append((start + ["را", verb], start + [verb, "را"]))
    return _pairs("object_marker", subsample(items, 120))


PHENOMENA = [subject_verb_agreement, present_agreement, object_marker]


def persian_pairs() -> list[MinimalPair]:
    """Every phenomenon's pairs, phenomenon by phenomenon, in a fixed order."""
    pairs = [pair for phenomenon in PHENOMENA for pair in phenomenon()]
    assert len({(p.good, p.bad) for p in pairs}) == len(pairs), "a template produced the same pair twice"
    return pairs
