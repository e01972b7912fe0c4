"""The embedded knowledge base: size, consistency, distractor safety and the question templates."""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter

import pytest

from ultramedical.data.knowledge import (
    EXCLUDED_DISTRACTORS,
    FACTS,
    Fact,
    claim,
    distractor_pool,
    distractors,
    fact_with_object,
    facts_for,
    objects_for,
    related_facts,
    relations,
    render,
    spec,
)
from ultramedical.data.knowledge_templates import DEMOGRAPHICS, RELATIONS, patient_phrase

# Textbook classics that must be present exactly (relation, subject, object).
CLASSICS = [
    ("drug_class", "metformin", "biguanide"),
    ("deficiency", "vitamin C", "scurvy"),
    ("organism", "Clostridioides difficile", "pseudomembranous colitis"),
    ("antidote", "acetaminophen", "N-acetylcysteine"),
    ("antidote", "opioid", "naloxone"),
    ("hormone_source", "insulin", "pancreatic beta cells"),
    ("enzyme_disorder", "hexosaminidase A", "Tay-Sachs disease"),
    ("adverse_effect", "amiodarone", "pulmonary fibrosis"),
    ("nerve_muscle", "long thoracic nerve", "serratus anterior"),
    ("hallmark_finding", "Wilson disease", "Kayser-Fleischer rings"),
    ("inheritance", "Duchenne muscular dystrophy", "X-linked recessive"),
    ("cytogenetics", "chronic myeloid leukemia", "t(9;22) BCR-ABL1 fusion"),
    ("autoantibody", "granulomatosis with polyangiitis", "anti-proteinase 3 antibodies (c-ANCA)"),
    ("first_line", "primary syphilis", "intramuscular benzathine penicillin G"),
]


def test_size_and_relations():
    assert len(FACTS) >= 180
    assert len(relations()) >= 8
    assert set(relations()) == set(RELATIONS)
    for relation in relations():
        assert len(facts_for(relation)) >= 10, relation


def test_every_relation_has_enough_distinct_objects_for_five_options():
    for relation in relations():
        assert len(objects_for(relation)) >= 6, relation
        for fact in facts_for(relation):
            assert len(distractor_pool(fact)) >= 4, fact


def test_no_duplicate_subject_within_a_relation():
    counts = Counter((f.relation, f.subject) for f in FACTS)
    assert [key for key, n in counts.items() if n > 1] == []


def test_fact_is_frozen_and_well_formed():
    fact = FACTS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fact.obj = "something else"  # type: ignore[misc]
    for f in FACTS:
        assert isinstance(f, Fact)
        assert f.subject.strip() == f.subject and f.obj.strip() == f.obj and f.subject and f.obj
        assert f.subject != f.obj
        assert f.explanation[0].isupper() or f.explanation[0].isdigit(), f
        assert f.explanation.endswith("."), f
        assert not re.search(r"\.\s+[A-Z]", f.explanation[:-1]), f"not one sentence: {f.explanation}"
        assert len(f.explanation) >= 25


def test_explanations_mention_the_subject_or_object():
    def words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4}

    for f in FACTS:
        assert words(f.subject + " " + f.obj) & words(f.explanation), f


@pytest.mark.parametrize("relation,subject,obj", CLASSICS)
def test_textbook_classics(relation, subject, obj):
    assert Fact(relation, subject, obj, "") in {dataclasses.replace(f, explanation="") for f in FACTS}


def test_excluded_distractors_refer_to_real_facts_and_are_never_offered():
    subjects = {(f.relation, f.subject): f for f in FACTS}
    for (relation, subject), objs in EXCLUDED_DISTRACTORS.items():
        assert (relation, subject) in subjects
        fact = subjects[(relation, subject)]
        assert objs <= set(objects_for(relation)), objs - set(objects_for(relation))
        assert not objs & set(distractor_pool(fact))
    amiodarone = subjects[("adverse_effect", "amiodarone")]
    rng = random.Random(0)
    for _ in range(200):
        assert "optic neuritis" not in distractors(amiodarone, 4, rng)


def test_distractors_are_distinct_wrong_and_deterministic():
    for fact in FACTS:
        picked = distractors(fact, 4, random.Random(fact.subject))
        assert len(set(picked)) == 4 and fact.obj not in picked
        assert set(picked) <= set(objects_for(fact.relation))
        assert picked == distractors(fact, 4, random.Random(fact.subject))
    fact = facts_for("inheritance")[0]
    with pytest.raises(ValueError):
        distractors(fact, len(distractor_pool(fact)) + 1, random.Random(0))


def test_fact_with_object_and_related_facts():
    for fact in FACTS:
        other = fact_with_object(fact.relation, fact.obj)
        assert other.obj == fact.obj and other.relation == fact.relation
    metformin = next(f for f in FACTS if f.relation == "drug_class" and f.subject == "metformin")
    related = related_facts(metformin)
    assert any(f.relation == "adverse_effect" for f in related)
    assert all(f.relation != "drug_class" for f in related)


def test_claims():
    fact = next(f for f in FACTS if f.subject == "vitamin C")
    assert claim(fact) == "Deficiency of vitamin C causes scurvy"
    assert claim(fact, "pellagra", capitalize=False) == "deficiency of vitamin C causes pellagra"
    for f in FACTS:
        text = claim(f)
        assert f.obj in text and (f.subject in text or f.subject[:1].upper() + f.subject[1:] in text)


def test_templates_have_held_out_variants():
    for relation in relations():
        s = spec(relation)
        assert len(s.train_vignettes) >= 3 and len(s.train_stems) >= 3 and len(s.train_yesno) >= 2
        assert len(s.open_prompts) >= 1
        assert s.test_vignette not in s.train_vignettes
        assert s.test_stem not in s.train_stems
        assert s.test_yesno not in s.train_yesno
        assert 1 <= s.difficulty <= 10
        assert s.mmlu_subject in {"clinical_knowledge", "medical_genetics", "anatomy",
                                  "professional_medicine", "college_biology", "college_medicine"}


def test_every_template_renders_for_every_fact():
    rng = random.Random(0)
    for fact in FACTS:
        s = spec(fact.relation)
        for template in s.vignettes + s.stems + s.open_prompts + s.yesno + (s.mmlu,):
            text = render(template, fact, rng)
            assert "{" not in text and "}" not in text
            assert text[0].isupper() or text[0].isdigit(), text
            assert fact.subject in text or fact.subject[:1].upper() + fact.subject[1:] in text
        for vignette in s.vignettes:
            assert render(vignette, fact, rng).endswith("?")
        for stem in s.stems:
            assert render(stem, fact, rng)[-1] in ":?"


def test_patients_fit_the_subject():
    rng = random.Random(1)
    for _ in range(50):
        assert patient_phrase("valproate", "adverse_effect", rng).endswith("pregnant woman")
        assert re.fullmatch(r"an? \d+-year-old man", patient_phrase("spironolactone", "adverse_effect", rng))
        assert "-day-old" in patient_phrase("Down syndrome", "cytogenetics", rng)
        assert re.search(r"\d+-year-old (man|woman)$", patient_phrase("metformin", "drug_class", rng))
    assert patient_phrase("vitamin E", "deficiency", rng).startswith("a preterm newborn")
    for subject in DEMOGRAPHICS:
        assert any(f.subject == subject for f in FACTS), f"demographics for unknown subject {subject!r}"


def test_articles():
    rng = random.Random(0)
    phrases = {patient_phrase("metformin", "drug_class", rng) for _ in range(2000)}
    for phrase in phrases:
        age = int(re.search(r"(\d+)-year-old", phrase).group(1))
        vowel = age in (8, 11, 18) or 80 <= age <= 89
        assert phrase.startswith("an " if vowel else "a "), phrase
