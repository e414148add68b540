"""The built-in English minimal pairs (`builtin:en`), in the words of the State of the Union addresses.

BLiMP's sentences (Warstadt et al. 2020, arXiv 1912.00582) are full of names and everyday nouns a
model trained on two centuries of presidential speeches has rarely seen, so it would fail them on
vocabulary rather than on grammar. These pairs test the same kinds of grammar on the corpus's own
register (nation, Congress, treaty, tax, citizens ...), built by rule from templates and small word
lists, so they are the same on every run and every pair is correct by construction.

Each bad sentence changes one word of the good one, or (word_order) swaps two adjacent words:

    subject_verb_agreement     the laws of the nation are fair / *is fair (with and without a noun of
                               the other number in between)
    determiner_noun_agreement  we must reform this law / *this laws, these taxes / *these tax
    anaphor_agreement          the states defended themselves / *itself
    argument_structure         Congress passed the bill / *Congress arrived the bill
    word_order                 we must defend the rights of the people / *we defend must ...
    irregular_past             the war began / *begun, we have taken action / *have took
    negative_polarity          no nation has ever faced a greater test / *the nation has ever ...

Where a template's product is large, a fixed subsample (`random.Random(0)`) keeps every phenomenon at
150-400 pairs, so none dominates the overall accuracy.
"""

from __future__ import annotations

from itertools import product

from masklab.evaluate.pairs.pair import MinimalPair, subsample

# (singular, plural, kind); the kind picks predicates and verbs that make sense of the noun
NOUNS = [
    ("citizen", "citizens", "people"),
    ("soldier", "soldiers", "people"),
    ("farmer", "farmers", "people"),
    ("worker", "workers", "people"),
    ("leader", "leaders", "people"),
    ("veteran", "veterans", "people"),
    ("nation", "nations", "body"),
    ("state", "states", "body"),
    ("government", "governments", "body"),
    ("army", "armies", "body"),
    ("court", "courts", "body"),
    ("city", "cities", "body"),
    ("law", "laws", "measure"),
    ("treaty", "treaties", "measure"),
    ("tax", "taxes", "measure"),
    ("program", "programs", "measure"),
    ("budget", "budgets", "measure"),
]
PREDICATES = {
    "people": ["ready to serve", "loyal to the Union", "in need of help"],
    "body": ["strong", "ready to act", "in good order"],
    "measure": ["necessary", "fair to all", "before the Congress"],
}
COPULAS = [("is", "are"), ("was", "were"), ("has been", "have been")]  # (singular, plural)
ATTRACTORS = [("nation", "nations"), ("state", "states")]  # the noun of the other number between subject and verb

OBJECT_VERBS = {
    "people": ["must honor", "will protect", "thanked"],
    "body": ["must defend", "will strengthen", "supported"],
    "measure": ["passed", "must reform", "rejected"],
}
DETERMINER_SUBJECTS = ["Congress", "we", "the government", "the Senate"]
DEMONSTRATIVES = [("this", "these"), ("that", "those")]

# (subject, its reflexive, a reflexive of another person, number or gender); the bad ones never
# differ by gender alone where English leaves gender open (a president may be a woman)
REFLEXIVE_SUBJECTS = (
    [
        ("I", "myself", "themselves"),
        ("we", "ourselves", "themselves"),
        ("they", "themselves", "himself"),
        ("he", "himself", "themselves"),
        ("she", "herself", "themselves"),
        ("our allies", "themselves", "itself"),
    ]
    + [
        (f"the {plural}", "themselves", "itself")
        for plural in ("soldiers", "states", "citizens", "farmers", "nations", "workers", "veterans")
    ]
    # not "themselves" as the bad one: a collective noun takes it in British usage ("the government have")
    + [
        (body, "itself", "himself")
        for body in ("the nation", "the government", "the army", "the Union", "the republic", "the country", "Congress")
    ]
)
REFLEXIVE_VERBS = [
    "defended {}",
    "must defend {}",
    "protected {}",
    "will protect {}",
    "prepared {} for war",
    "committed {} to peace",
    "armed {}",
    "must govern {}",
    "pledged {} to the cause",
]

ACTORS = ["Congress", "the Senate", "the president", "the government", "the administration"]
TRANSITIVE = [
    ("passed", ["the bill", "the budget", "a new law"]),
    ("signed", ["the treaty", "the bill", "the agreement"]),
    ("approved", ["the budget", "the treaty", "the plan"]),
    ("rejected", ["the treaty", "the plan", "the proposal"]),
    ("reformed", ["the tax code", "the civil service"]),
    ("defended", ["the border", "the Union"]),
    ("supported", ["the army", "the farmers"]),
    ("ended", ["the war", "the crisis"]),
]
# verbs that take no object at all (not "waited", "fell", "died": each has a transitive or cognate use)
INTRANSITIVE = ["arrived", "existed", "vanished", "disappeared", "hesitated", "happened", "occurred", "emerged"]

ORDER_SUBJECTS = ["we", "Congress", "the government", "the president", "our leaders"]
MODALS = ["must", "will", "shall", "should"]
ORDER_VERBS = ["defend", "protect", "preserve", "secure", "respect"]
POSSESSIONS = [
    ("rights", ["people", "states", "citizens"]),
    ("laws", ["land", "nation", "Union"]),
    ("borders", ["nation", "country", "republic"]),
    ("interests", ["nation", "people"]),
    ("liberties", ["people", "citizens"]),
]
# the swapped pair, as offsets from the modal in [modal, verb, the, noun, of, the, owner]
SWAPS = [(0, 1), (2, 3), (4, 5), (5, 6)]

# (simple past, past participle, [(subject, plural?)], complements): only verbs whose two forms differ;
# no past-time adverbials, which the present perfect refuses ("*we have taken action last year")
IRREGULAR = [
    (
        "began",
        "begun",
        [("the war", 0), ("the session", 0), ("the debate", 0), ("the recovery", 0)],
        ["at last", "in earnest", "again"],
    ),
    (
        "took",
        "taken",
        [("Congress", 0), ("we", 1), ("the government", 0), ("the states", 1)],
        ["action", "the first step", "a firm stand"],
    ),
    (
        "spoke",
        "spoken",
        [("the president", 0), ("the people", 1), ("we", 1), ("our allies", 1)],
        ["plainly", "with one voice", "for peace"],
    ),
    (
        "wrote",
        "written",
        [("Congress", 0), ("we", 1), ("the president", 0), ("the founders", 1)],
        ["a new law", "to the governors", "a plan for peace"],
    ),
    (
        "gave",
        "given",
        [("Congress", 0), ("we", 1), ("the nation", 0), ("our people", 1)],
        ["aid to our allies", "hope to the world", "support to the farmers"],
    ),
    (
        "chose",
        "chosen",
        [("the people", 1), ("we", 1), ("the nation", 0), ("Congress", 0)],
        ["peace", "a new path", "freedom"],
    ),
    (
        "broke",
        "broken",
        [("the enemy", 0), ("we", 1), ("the navy", 0), ("they", 1)],
        ["the treaty", "the blockade", "the peace"],
    ),
    (
        "grew",
        "grown",
        [("the nation", 0), ("the economy", 0), ("our cities", 1), ("the states", 1)],
        ["stronger", "more prosperous", "rapidly"],
    ),
    (
        "rose",
        "risen",
        [("prices", 1), ("the debt", 0), ("wages", 1), ("the deficit", 0)],
        ["sharply", "again", "steadily"],
    ),
    (
        "fell",
        "fallen",
        [("prices", 1), ("the deficit", 0), ("taxes", 1), ("unemployment", 0)],
        ["sharply", "again", "steadily"],
    ),
    (
        "forgot",
        "forgotten",
        [("we", 1), ("the nation", 0), ("the people", 1), ("Congress", 0)],
        ["the lessons of the war", "our veterans", "the cost of freedom"],
    ),
    (
        "knew",
        "known",
        [("we", 1), ("the nation", 0), ("our people", 1), ("the country", 0)],
        ["hard times", "the cost of war", "the price of freedom"],
    ),
    (
        "swore",
        "sworn",
        [("the president", 0), ("we", 1), ("the soldiers", 1), ("the new members", 1)],
        ["an oath", "loyalty to the Union", "to defend the Constitution"],
    ),
    (
        "bore",
        "borne",
        [("we", 1), ("the nation", 0), ("our farmers", 1), ("the taxpayer", 0)],
        ["the burden", "the cost of the war", "heavy losses"],
    ),
    (
        "drove",
        "driven",
        [("the army", 0), ("our soldiers", 1), ("we", 1), ("the navy", 0)],
        ["the enemy back", "the invaders out", "the pirates from the seas"],
    ),
    (
        "shook",
        "shaken",
        [("the crisis", 0), ("the war", 0), ("these events", 1), ("the scandals", 1)],
        ["the confidence of the people", "the markets", "the nation"],
    ),
]

POLARITY_NOUNS = [
    "nation",
    "state",
    "president",
    "government",
    "administration",
    "generation",
    "army",
    "city",
    "party",
    "court",
]
# "ever" needs a negative licence: "no" gives it, "the" and "every" do not
POLARITY_PHRASES = [
    "faced a greater test",
    "known such prosperity",
    "broken this promise",
    "doubted the strength of the Union",
    "ignored the will of the people",
    "asked for so much",
    "done more for peace",
    "carried a heavier burden",
    "spent so much on defense",
    "won a war alone",
    "kept every promise",
    "stood alone for long",
    "paid such a price",
    "seen a debt so large",
    "turned away from duty",
    "found an easy path to peace",
]


def sentence(text: str) -> str:
    """Capitalise the first letter (and only it: "Congress" and "Union" keep theirs) and end with a period."""
    return text[0].upper() + text[1:] + "."


def _pairs(phenomenon: str, sentences: list[tuple[str, str]]) -> list[MinimalPair]:
    return [MinimalPair(sentence(good), sentence(bad), phenomenon) for good, bad in sentences]


def subject_verb_agreement() -> list[MinimalPair]:
    plain, attracted = [], []
    for (sg, pl, kind), (is_, are) in product(NOUNS, COPULAS):
        for pred in PREDICATES[kind]:
            plain += [
                (f"the {sg} {is_} {pred}", f"the {sg} {are} {pred}"),
                (f"the {pl} {are} {pred}", f"the {pl} {is_} {pred}"),
            ]
            for a_sg, a_pl in ATTRACTORS:
                if sg not in ("nation", "state"):  # they are the attractors: "the state of the states"
                    attracted += [
                        (f"the {sg} of the {a_pl} {is_} {pred}", f"the {sg} of the {a_pl} {are} {pred}"),
                        (f"the {pl} of the {a_sg} {are} {pred}", f"the {pl} of the {a_sg} {is_} {pred}"),
                    ]
    return _pairs("subject_verb_agreement", subsample(plain, 150) + subsample(attracted, 200))


def determiner_noun_agreement() -> list[MinimalPair]:
    items = []
    for (sg, pl, kind), subject, (this, these) in product(NOUNS, DETERMINER_SUBJECTS, DEMONSTRATIVES):
        for verb in OBJECT_VERBS[kind]:
            items += [
                (f"{subject} {verb} {this} {sg}", f"{subject} {verb} {this} {pl}"),
                (f"{subject} {verb} {these} {pl}", f"{subject} {verb} {these} {sg}"),
            ]
    return _pairs("determiner_noun_agreement", subsample(items, 250))


def anaphor_agreement() -> list[MinimalPair]:
    return _pairs(
        "anaphor_agreement",
        [
            (f"{subject} {verb.format(own)}", f"{subject} {verb.format(other)}")
            for (subject, own, other), verb in product(REFLEXIVE_SUBJECTS, REFLEXIVE_VERBS)
        ],
    )


def argument_structure() -> list[MinimalPair]:
    items = [
        (f"{actor} {verb} {obj}", f"{actor} {wrong} {obj}")
        for actor, (verb, objects), wrong in product(ACTORS, TRANSITIVE, INTRANSITIVE)
        for obj in objects
    ]
    return _pairs("argument_structure", subsample(items, 250))


def word_order() -> list[MinimalPair]:
    items = []
    for subject, modal, verb, (noun, owners), swap in product(ORDER_SUBJECTS, MODALS, ORDER_VERBS, POSSESSIONS, SWAPS):
        for owner in owners:
            head = subject.split()
            tail = [modal, verb, "the", noun, "of", "the", owner]
            i, j = swap
            swapped = tail.copy()
            swapped[i], swapped[j] = tail[j], tail[i]
            items.append((" ".join(head + tail), " ".join(head + swapped)))
    return _pairs("word_order", subsample(items, 250))


def irregular_past() -> list[MinimalPair]:
    items = []
    for past, participle, subjects, complements in IRREGULAR:
        for (subject, plural), complement in product(subjects, complements):
            have = "have" if plural else "has"
            items += [
                (f"{subject} {past} {complement}", f"{subject} {participle} {complement}"),
                (f"{subject} {have} {participle} {complement}", f"{subject} {have} {past} {complement}"),
            ]
    return _pairs("irregular_past", items)


def negative_polarity() -> list[MinimalPair]:
    items = [
        (f"no {noun} has ever {phrase}", f"{('the', 'every')[n % 2]} {noun} has ever {phrase}")
        for n, (noun, phrase) in enumerate(product(POLARITY_NOUNS, POLARITY_PHRASES))
    ]
    return _pairs("negative_polarity", items)


PHENOMENA = [
    subject_verb_agreement,
    determiner_noun_agreement,
    anaphor_agreement,
    argument_structure,
    word_order,
    irregular_past,
    negative_polarity,
]


def english_pairs() -> list[MinimalPair]:
    """Every phenomenon's pairs, phenomenon by phenomenon, in a fixed order."""
    pairs = [pair for phenomenon in PHENOMENA for pair in phenomenon()]
    assert len({(p.good, p.bad) for p in pairs}) == len(pairs), "a template produced the same pair twice"
    return pairs
