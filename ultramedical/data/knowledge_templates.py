"""Question templates and patient demographics for the facts in `ultramedical.data.knowledge`.

Every relation has MedQA-style vignettes, MedMCQA-style stems, open-ended prompts, a declarative
claim and yes/no questions. The LAST vignette, stem and yes/no template of each relation (and the
MMLU template) are held out: the sample corpus uses them only for its test splits, so test questions
are phrased differently from anything seen in training.

Placeholders: {subject}, {Subject} (first letter capitalised), {obj}, {patient}, {Patient} (for
example "a 45-year-old woman" / "A 45-year-old woman").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# (lowest age, highest age, sex, unit); sex is any|male|female|pregnant|preterm, unit year|month|week|day.
Demographic = tuple[int, int, str, str]


@dataclass(frozen=True)
class RelationSpec:
    """How questions about one relation are asked; the last template of each kind is held out."""

    name: str
    description: str  # what the object is to the subject, e.g. "drug class"
    skill: str  # what a question on this relation tests, for difficulty notes
    mmlu_subject: str
    difficulty: int  # base difficulty 1-10 for a one-line stem
    vignettes: tuple[str, ...]
    stems: tuple[str, ...]
    open_prompts: tuple[str, ...]
    claim: str  # declarative form, no final period
    yesno: tuple[str, ...]
    mmlu: str  # held-out "which statement is correct" question
    patient: Demographic = (22, 75, "any", "year")

    @property
    def train_vignettes(self) -> tuple[str, ...]:
        return self.vignettes[:-1]

    @property
    def test_vignette(self) -> str:
        return self.vignettes[-1]

    @property
    def train_stems(self) -> tuple[str, ...]:
        return self.stems[:-1]

    @property
    def test_stem(self) -> str:
        return self.stems[-1]

    @property
    def train_yesno(self) -> tuple[str, ...]:
        return self.yesno[:-1]

    @property
    def test_yesno(self) -> str:
        return self.yesno[-1]


_SPECS = (
    RelationSpec(
        "drug_class", "drug class", "pharmacology recall of drug classes", "clinical_knowledge", 3,
        (
            "{Patient} is started on {subject} by the primary care physician. Which of the following best "
            "describes the pharmacological class of this medication?",
            "{Patient} is reviewing a new prescription for {subject} with a pharmacist, who explains how "
            "the drug works. To which drug class does {subject} belong?",
            "During a medication reconciliation, {patient} reports taking {subject} daily. Which of the "
            "following classes includes this drug?",
            "{Patient} is admitted to the hospital, and the team notes that the home medications include "
            "{subject}. This drug is best classified as which of the following?",
        ),
        (
            "{Subject} belongs to which group of drugs?",
            "{Subject} is classified as a:",
            "Pharmacological class of {subject} is:",
            "Which of the following best describes {subject}?",
        ),
        (
            "What class of drug is {subject}, and what is the basis of that classification?",
            "Explain the pharmacological class of {subject} and how drugs of that class act.",
        ),
        "{subject} belongs to the {obj} class",
        (
            "Is {subject} a member of the {obj} class?",
            "Does {subject} belong to the {obj} class of drugs?",
            "Should {subject} be classified within the {obj} class?",
        ),
        "Which of the following statements about {subject} is correct?",
    ),
    RelationSpec(
        "first_line", "first-line treatment", "knowledge of first-line management",
        "professional_medicine", 5,
        (
            "{Patient} is diagnosed with {subject} after an appropriate evaluation. Which of the following "
            "is the most appropriate first-line treatment?",
            "{Patient} is evaluated, and the clinical picture is consistent with {subject}. There are no "
            "contraindications to standard therapy. Which of the following should be initiated?",
            "After confirming {subject} in {patient}, the physician discusses management. Which of the "
            "following is the first-line therapy?",
            "{Patient} presents with a condition that, after work-up, is confirmed to be {subject}. Which "
            "of the following is the preferred initial therapy?",
        ),
        (
            "Treatment of choice for {subject} is:",
            "First-line treatment of {subject} is:",
            "In {subject}, the first-line therapy is:",
            "Which of the following is the initial treatment of choice for {subject}?",
        ),
        (
            "What is the first-line treatment for {subject}, and why is it preferred?",
            "Describe the initial management of {subject}.",
        ),
        "the first-line treatment for {subject} is {obj}",
        (
            "Is {obj} the first-line treatment for {subject}?",
            "Is {obj} recommended as initial therapy in {subject}?",
            "Should {obj} be used first in {subject}?",
        ),
        "Which of the following statements about the treatment of {subject} is correct?",
    ),
    RelationSpec(
        "deficiency", "deficiency disease", "nutritional biochemistry", "clinical_knowledge", 3,
        (
            "{Patient} is found on laboratory evaluation to be deficient in {subject}. Which of the "
            "following conditions is this deficiency most likely to cause?",
            "A nutrition survey identifies {patient} with a prolonged deficiency of {subject}. Which of the "
            "following disorders is classically associated with this deficiency?",
            "{Patient} develops clinical features attributed to inadequate {subject}. Which of the following "
            "is the expected diagnosis?",
            "{Patient} is evaluated by a dietitian, and testing confirms a deficiency of {subject}. Which of "
            "the following diseases results from this deficiency?",
        ),
        (
            "Deficiency of {subject} causes:",
            "Disease caused by lack of {subject} is:",
            "A diet lacking {subject} results in:",
            "Which of the following results from a deficiency of {subject}?",
        ),
        (
            "What disease results from deficiency of {subject}, and why?",
            "Describe the condition caused by a lack of {subject}.",
        ),
        "deficiency of {subject} causes {obj}",
        (
            "Does deficiency of {subject} cause {obj}?",
            "Is {obj} a consequence of inadequate {subject}?",
            "Can a lack of {subject} lead to {obj}?",
        ),
        "Which of the following statements about a lack of {subject} is correct?",
    ),
    RelationSpec(
        "organism", "associated disease", "microbiology recall", "college_medicine", 4,
        (
            "{Patient} is found to be infected with {subject}. Which of the following diseases is this "
            "organism classically responsible for?",
            "Laboratory testing of specimens from {patient} identifies {subject}. Which of the following "
            "conditions does this pathogen cause?",
            "A public health team is notified after {subject} is identified in {patient}. Which disease is "
            "caused by this organism?",
            "{Patient} is treated for an illness, and the laboratory reports {subject} as the causative "
            "agent. Which of the following is the most likely diagnosis?",
        ),
        (
            "{Subject} causes:",
            "Disease caused by {subject} is:",
            "Infection with {subject} results in:",
            "Which of the following diseases is caused by {subject}?",
        ),
        (
            "Which disease does {subject} cause, and how is it acquired or recognised?",
            "Describe the disease caused by {subject}.",
        ),
        "{subject} causes {obj}",
        (
            "Is {subject} the cause of {obj}?",
            "Does infection with {subject} cause {obj}?",
            "Is {obj} attributable to {subject}?",
        ),
        "Which of the following statements about {subject} is correct?",
    ),
    RelationSpec(
        "hormone_source", "secreting gland or cell", "endocrine physiology", "college_biology", 3,
        (
            "{Patient} undergoes endocrine testing that includes a measurement of {subject}. Which of the "
            "following is the main source of this hormone?",
            "While reviewing laboratory results with {patient}, a physician explains where {subject} is "
            "produced. Which of the following secretes it?",
            "{Patient} has an abnormal level of {subject} on routine testing. This hormone is normally "
            "secreted by which of the following?",
            "{Patient} is enrolled in a study that tracks circulating {subject}. Which of the following "
            "releases this hormone?",
        ),
        (
            "{Subject} is secreted by:",
            "Source of {subject} is:",
            "{Subject} is produced by:",
            "Which of the following secretes {subject}?",
        ),
        (
            "Where is {subject} produced, and what controls its release?",
            "Explain which cells or gland secrete {subject}.",
        ),
        "{subject} is secreted by the {obj}",
        (
            "Is {subject} secreted by the {obj}?",
            "Is {subject} produced mainly by the {obj}?",
            "Does {subject} originate from the {obj}?",
        ),
        "Which of the following statements about the origin of {subject} is correct?",
    ),
    RelationSpec(
        "enzyme_disorder", "deficiency disorder", "biochemical genetics", "medical_genetics", 5,
        (
            "{Patient} is evaluated by a metabolic specialist. Enzyme assays show markedly reduced activity "
            "of {subject}. Which of the following is the most likely diagnosis?",
            "Genetic testing in {patient} reveals pathogenic variants that abolish the activity of "
            "{subject}. Which disorder does the patient most likely have?",
            "{Patient} has a metabolic disorder that is traced to absent {subject} activity. Which of the "
            "following is the diagnosis?",
            "A metabolic specialist caring for {patient} confirms a deficiency of {subject}. Which of the "
            "following conditions is associated with this enzyme defect?",
        ),
        (
            "Deficiency of the enzyme {subject} causes:",
            "{Subject} deficiency is seen in:",
            "Disorder due to lack of {subject} activity is:",
            "Which of the following is caused by a lack of {subject} activity?",
        ),
        (
            "Which disorder is caused by deficiency of {subject}, and what accumulates?",
            "Describe the disease that results from loss of {subject} activity.",
        ),
        "deficiency of {subject} causes {obj}",
        (
            "Is {obj} caused by loss of {subject} activity?",
            "Is {obj} due to {subject} deficiency?",
            "Does absent {subject} activity underlie {obj}?",
        ),
        "Which of the following statements about {subject} deficiency is correct?",
        (1, 10, "any", "year"),
    ),
    RelationSpec(
        "adverse_effect", "characteristic adverse effect", "drug safety knowledge",
        "professional_medicine", 5,
        (
            "{Patient} is treated with {subject}. Which of the following adverse effects is "
            "characteristically associated with this drug?",
            "{Patient} is counseled about a new prescription for {subject}. Which of the following is a "
            "classic adverse effect that should be monitored for?",
            "{Patient} develops a new problem after starting {subject}. Which of the following adverse "
            "effects is this drug best known for?",
            "{Patient} receives {subject} as part of treatment. Which of the following toxicities is most "
            "characteristic of this agent?",
        ),
        (
            "Characteristic adverse effect of {subject} is:",
            "{Subject} is known to cause:",
            "Side effect classically associated with {subject}:",
            "Which of the following is a well-known toxicity of {subject}?",
        ),
        (
            "What is the characteristic adverse effect of {subject}, and why does it occur?",
            "Describe a classic toxicity of {subject} that clinicians should monitor for.",
        ),
        "{subject} characteristically causes {obj}",
        (
            "Is {obj} the characteristic adverse effect of {subject}?",
            "Is {subject} best known for causing {obj}?",
            "Is {obj} the hallmark toxicity of {subject}?",
        ),
        "Which of the following statements about the adverse effects of {subject} is correct?",
    ),
    RelationSpec(
        "antidote", "antidote", "toxicology", "clinical_knowledge", 4,
        (
            "{Patient} is brought to the emergency department with {subject} poisoning. Which of the "
            "following is the specific antidote?",
            "Paramedics bring in {patient} with {subject} toxicity. After the airway is secured, which of "
            "the following should be administered as the antidote?",
            "{Patient} develops {subject} toxicity. Which agent counteracts this toxicity?",
            "A toxicologist is consulted for {patient} with suspected {subject} poisoning. Which of the "
            "following is the antidote of choice?",
        ),
        (
            "Antidote for {subject} poisoning is:",
            "Drug used to treat {subject} toxicity:",
            "In {subject} toxicity, the antidote is:",
            "Which of the following reverses {subject} toxicity?",
        ),
        (
            "What is the antidote for {subject} toxicity, and how does it work?",
            "Explain how {subject} poisoning is treated.",
        ),
        "the antidote for {subject} toxicity is {obj}",
        (
            "Is {obj} the antidote for {subject} toxicity?",
            "Does {obj} counteract {subject} poisoning?",
            "Should {obj} be given for {subject} poisoning?",
        ),
        "Which of the following statements about {subject} toxicity is correct?",
        (18, 70, "any", "year"),
    ),
    RelationSpec(
        "nerve_muscle", "target muscles", "peripheral nerve anatomy", "anatomy", 4,
        (
            "{Patient} sustains an injury to the {subject} after trauma. Weakness of which of the following "
            "is most likely?",
            "{Patient} has an isolated lesion of the {subject} confirmed by electromyography. Which of the "
            "following is most likely to be affected?",
            "Following an injury, {patient} is found to have a palsy of the {subject}. Which of the "
            "following is innervated by this nerve?",
            "{Patient} undergoes nerve conduction studies that localize a lesion to the {subject}. Which of "
            "the following would show weakness?",
        ),
        (
            "The {subject} supplies:",
            "Muscle supplied by the {subject}:",
            "Injury to the {subject} causes weakness of:",
            "Which of the following is innervated by the {subject}?",
        ),
        (
            "What does the {subject} innervate, and what deficit follows its injury?",
            "Describe the motor supply of the {subject}.",
        ),
        "the {subject} innervates the {obj}",
        (
            "Does the {subject} innervate the {obj}?",
            "Is the {obj} supplied by the {subject}?",
            "Would a lesion of the {subject} weaken the {obj}?",
        ),
        "Which of the following statements about the {subject} is correct?",
        (18, 65, "any", "year"),
    ),
    RelationSpec(
        "hallmark_finding", "characteristic finding", "diagnostic pathology and laboratory medicine",
        "college_medicine", 4,
        (
            "{Patient} is diagnosed with {subject}. Which of the following findings is most characteristic "
            "of this condition?",
            "The diagnostic work-up of {patient} with {subject} is reviewed at a case conference. Which of "
            "the following findings would be expected?",
            "{Patient} has a confirmed diagnosis of {subject}. Which of the following is the classic "
            "diagnostic finding?",
            "In {patient} with suspected {subject}, which of the following findings would best support the "
            "diagnosis?",
        ),
        (
            "Characteristic finding in {subject} is:",
            "Hallmark of {subject}:",
            "{Subject} is characterized by:",
            "Which of the following is typical of {subject}?",
        ),
        (
            "What is the hallmark diagnostic finding of {subject}, and what does it reflect?",
            "Describe the characteristic finding that supports a diagnosis of {subject}.",
        ),
        "a characteristic finding of {subject} is {obj}",
        (
            "Is the presence of {obj} characteristic of {subject}?",
            "Does {subject} characteristically show {obj}?",
            "Would {obj} support a diagnosis of {subject}?",
        ),
        "Which of the following statements about the diagnosis of {subject} is correct?",
    ),
    RelationSpec(
        "inheritance", "mode of inheritance", "medical genetics", "medical_genetics", 4,
        (
            "A couple whose first child has {subject} asks a genetic counselor about the risk to future "
            "children. What is the mode of inheritance of this disorder?",
            "A pedigree is drawn for a family in which members are affected by {subject}. Which inheritance "
            "pattern is characteristic of this condition?",
            "{Patient} is diagnosed with {subject}. Which of the following best describes how this disorder "
            "is inherited?",
            "During genetic counseling about {subject}, the counselor explains how it is transmitted. Which "
            "of the following patterns applies?",
        ),
        (
            "Mode of inheritance of {subject} is:",
            "{Subject} is inherited as:",
            "Inheritance pattern of {subject}:",
            "Which of the following describes the inheritance of {subject}?",
        ),
        (
            "How is {subject} inherited, and what is the underlying genetic defect?",
            "Explain the inheritance pattern of {subject}.",
        ),
        "{subject} shows {obj} inheritance",
        (
            "Does {subject} show {obj} inheritance?",
            "Is the inheritance of {subject} {obj}?",
            "Is {subject} transmitted by {obj} inheritance?",
        ),
        "Which of the following statements about the genetics of {subject} is correct?",
        (1, 12, "any", "year"),
    ),
    RelationSpec(
        "cytogenetics", "chromosomal abnormality", "cytogenetics", "medical_genetics", 5,
        (
            "{Patient} is diagnosed with {subject}. Which of the following cytogenetic abnormalities is most "
            "likely?",
            "Karyotype or molecular cytogenetic testing is performed for {patient} with {subject}. Which of "
            "the following results is expected?",
            "{Patient} with {subject} is referred for genetic evaluation. Which chromosomal abnormality "
            "underlies this condition?",
            "Cytogenetic studies are ordered to confirm {subject} in {patient}. Which of the following "
            "abnormalities would be found?",
        ),
        (
            "Chromosomal abnormality in {subject} is:",
            "{Subject} is associated with:",
            "Cytogenetic finding of {subject}:",
            "Which of the following is the genetic abnormality in {subject}?",
        ),
        (
            "What chromosomal abnormality underlies {subject}, and what are its consequences?",
            "Describe the cytogenetic basis of {subject}.",
        ),
        "{subject} is associated with {obj}",
        (
            "Is {subject} associated with {obj}?",
            "Does {subject} result from {obj}?",
            "Is {obj} found in {subject}?",
        ),
        "Which of the following statements about the cytogenetics of {subject} is correct?",
    ),
    RelationSpec(
        "autoantibody", "characteristic autoantibody", "clinical immunology", "professional_medicine", 5,
        (
            "{Patient} is diagnosed with {subject}. Which of the following autoantibodies is most specific "
            "for this condition?",
            "Serologic testing is performed in {patient} suspected of having {subject}. Which antibody would "
            "most strongly support the diagnosis?",
            "{Patient} has clinical features of {subject}. Which of the following antibodies is "
            "characteristically present?",
            "To confirm {subject} in {patient}, the physician orders serology. Which of the following "
            "antibodies is the classic marker?",
        ),
        (
            "Antibody specific for {subject} is:",
            "Autoantibody associated with {subject}:",
            "Serological marker of {subject} is:",
            "Which autoantibody is characteristic of {subject}?",
        ),
        (
            "Which autoantibody is characteristic of {subject}, and what is its target?",
            "Describe the serologic marker used to diagnose {subject}.",
        ),
        "{subject} is characterized by {obj}",
        (
            "Are {obj} associated with {subject}?",
            "Is the presence of {obj} a marker of {subject}?",
            "Do {obj} serve as a serologic marker of {subject}?",
        ),
        "Which of the following statements about the serology of {subject} is correct?",
    ),
)

RELATIONS: dict[str, RelationSpec] = {spec.name: spec for spec in _SPECS}

# Vignettes for the online rounds' prompts only: phrasings that neither the SFT data, the preference data
# nor any test split uses, so the policy meets them as new questions (and its sampled answers differ, which
# gives the reward model something to choose between) while the test templates stay held out.
ONLINE_VIGNETTES: dict[str, tuple[str, ...]] = {
    "drug_class": (
        "{Patient} brings a list of current medicines to a clinic visit, among them {subject}. Which "
        "pharmacological class does this agent belong to?",
        "A medical student caring for {patient} is asked to name the class of {subject}, one of the "
        "patient's regular medicines. Which of the following is correct?",
    ),
    "first_line": (
        "{Patient} is seen in clinic, and the working diagnosis of {subject} is confirmed. Which of the "
        "following is the standard initial treatment?",
        "A resident presents {patient} with newly confirmed {subject} on morning rounds. Which treatment "
        "should be started first?",
    ),
    "deficiency": (
        "{Patient} has had a diet lacking in {subject} for many months. Which of the following "
        "conditions is most likely to develop?",
        "Blood tests in {patient} reveal a marked shortage of {subject}. Which disorder does this shortage "
        "typically produce?",
    ),
    "organism": (
        "Cultures from {patient} grow {subject}. Which disease is this organism best known for causing?",
        "{Patient} is seen by an infectious disease consultant, and {subject} is isolated. Which of the "
        "following illnesses does it classically cause?",
    ),
    "hormone_source": (
        "A physiology tutor discusses {subject} with {patient} who is curious about a lab report. Where "
        "in the body is this hormone mainly made?",
        "{Patient} asks which organ produces {subject}, a hormone measured at a recent visit. Which of the "
        "following is the main source?",
    ),
    "enzyme_disorder": (
        "{Patient} is found on newborn or metabolic screening to lack functional {subject}. Which "
        "condition explains this finding?",
        "A biochemical work-up of {patient} shows that {subject} does not work. Which of the following "
        "disorders results?",
    ),
    "adverse_effect": (
        "{Patient} returns to clinic some weeks after beginning {subject}. Which side effect is this "
        "medicine classically known to cause?",
        "Before prescribing {subject} to {patient}, the physician reviews its risks. Which adverse effect "
        "is most typical of this drug?",
    ),
    "antidote": (
        "{Patient} is found to have ingested a toxic amount of {subject}. Which of the following reverses "
        "this poisoning?",
        "In the emergency department, {patient} is treated for an overdose involving {subject}. Which "
        "antidote should be given?",
    ),
    "nerve_muscle": (
        "{Patient} has damage to the {subject} after an accident. Which of the following is supplied by "
        "this nerve?",
        "An examination of {patient} localizes a deficit to the {subject}. Function of which of the "
        "following is most likely impaired?",
    ),
    "hallmark_finding": (
        "{Patient} is worked up and found to have {subject}. Which finding is typical of this disease?",
        "A pathologist reviews material from {patient} with {subject}. Which of the following findings "
        "would be characteristic?",
    ),
    "inheritance": (
        "Parents of {patient} affected by {subject} ask how the condition is passed on. Which pattern of "
        "inheritance does it follow?",
        "A family history is taken for {patient} with {subject}. How is this condition typically "
        "inherited?",
    ),
    "cytogenetics": (
        "Genetic testing is sent for {patient} who has {subject}. Which abnormality is expected on this "
        "testing?",
        "{Patient} is found to have {subject}. Which genetic abnormality is most characteristic of it?",
    ),
    "autoantibody": (
        "{Patient} is being evaluated for {subject}. Which antibody test result is most characteristic?",
        "A rheumatology or specialist work-up of {patient} points to {subject}. Which autoantibody is the "
        "typical marker?",
    ),
}

_DAY, _MONTH, _WEEK = (1, 5, "any", "day"), (2, 11, "any", "month"), (3, 6, "any", "week")

# Patients for subjects that are not adults of either sex (keyed by subject, shared across relations).
DEMOGRAPHICS: dict[str, Demographic] = {
    # first-line treatment
    "childhood absence epilepsy": (5, 9, "any", "year"),
    "Kawasaki disease": (1, 4, "any", "year"),
    "symptomatic prolactinoma": (22, 40, "female", "year"),
    "uncomplicated type 2 diabetes mellitus": (40, 65, "any", "year"),
    "primary hypothyroidism": (35, 60, "female", "year"),
    "pernicious anemia": (55, 78, "any", "year"),
    "essential tremor": (45, 72, "any", "year"),
    "cluster headache (acute attack)": (25, 45, "male", "year"),
    # deficiencies
    "vitamin D": (1, 3, "any", "year"),
    "folate": (20, 36, "pregnant", "year"),
    "vitamin K": _DAY,
    "vitamin E": (0, 0, "preterm", "day"),
    "protein (with adequate calories)": (1, 4, "any", "year"),
    "total energy (calories and protein)": (1, 4, "any", "year"),
    # organisms and hormones
    "Bordetella pertussis": _MONTH,
    "parvovirus B19": (4, 10, "any", "year"),
    "Epstein-Barr virus": (15, 24, "any", "year"),
    "testosterone": (20, 50, "male", "year"),
    "progesterone during the luteal phase": (20, 40, "female", "year"),
    "human chorionic gonadotropin": (20, 38, "pregnant", "year"),
    # enzyme deficiencies
    "phenylalanine hydroxylase": _MONTH,
    "hexosaminidase A": _MONTH,
    "glucocerebrosidase": (8, 40, "any", "year"),
    "sphingomyelinase": _MONTH,
    "alpha-galactosidase A": (14, 30, "male", "year"),
    "galactocerebrosidase": _MONTH,
    "arylsulfatase A": (2, 6, "any", "year"),
    "alpha-L-iduronidase": (1, 3, "any", "year"),
    "iduronate-2-sulfatase": (2, 6, "male", "year"),
    "glucose-6-phosphatase": _MONTH,
    "lysosomal acid alpha-glucosidase": _MONTH,
    "muscle glycogen phosphorylase": (15, 30, "any", "year"),
    "homogentisate 1,2-dioxygenase": (35, 60, "any", "year"),
    "branched-chain alpha-ketoacid dehydrogenase": _DAY,
    "hypoxanthine-guanine phosphoribosyltransferase": (1, 5, "male", "year"),
    "adenosine deaminase": _MONTH,
    "21-hydroxylase": _DAY,
    "galactose-1-phosphate uridylyltransferase": _DAY,
    "cystathionine beta-synthase": (8, 16, "any", "year"),
    "uroporphyrinogen decarboxylase": (40, 65, "any", "year"),
    "porphobilinogen deaminase": (20, 40, "female", "year"),
    # drugs with a particular patient
    "spironolactone": (45, 70, "male", "year"),
    "finasteride": (50, 75, "male", "year"),
    "sildenafil": (45, 70, "male", "year"),
    "valproate": (20, 36, "pregnant", "year"),
    "tetracycline": (4, 7, "any", "year"),
    # hallmark findings
    "Hodgkin lymphoma": (18, 35, "any", "year"),
    "Parkinson disease": (58, 78, "any", "year"),
    "Alzheimer disease": (68, 86, "any", "year"),
    "papillary thyroid carcinoma": (25, 50, "female", "year"),
    "acute rheumatic carditis": (6, 15, "any", "year"),
    "Wilson disease": (12, 30, "any", "year"),
    "measles": (2, 8, "any", "year"),
    "alcoholic hepatitis": (35, 60, "any", "year"),
    "Whipple disease": (40, 60, "male", "year"),
    "Goodpasture syndrome": (20, 35, "male", "year"),
    "poststreptococcal glomerulonephritis": (5, 12, "any", "year"),
    "minimal change disease": (2, 6, "any", "year"),
    "cystic fibrosis": (1, 6, "any", "year"),
    "chronic granulomatous disease": (1, 5, "male", "year"),
    "lead poisoning": (1, 5, "any", "year"),
    "multiple myeloma": (60, 80, "any", "year"),
    # inherited disorders
    "Huntington disease": (35, 50, "any", "year"),
    "neurofibromatosis type 1": (4, 12, "any", "year"),
    "Marfan syndrome": (12, 25, "any", "year"),
    "familial hypercholesterolemia": (25, 45, "any", "year"),
    "achondroplasia": _MONTH,
    "familial adenomatous polyposis": (18, 30, "any", "year"),
    "phenylketonuria": _MONTH,
    "hereditary hemochromatosis": (40, 60, "male", "year"),
    "Friedreich ataxia": (8, 15, "any", "year"),
    "spinal muscular atrophy": _MONTH,
    "Duchenne muscular dystrophy": (3, 6, "male", "year"),
    "hemophilia A": (1, 6, "male", "year"),
    "Bruton agammaglobulinemia": (1, 2, "male", "year"),
    "Wiskott-Aldrich syndrome": (2, 11, "male", "month"),
    "G6PD deficiency": (5, 30, "male", "year"),
    "Rett syndrome": (1, 3, "female", "year"),
    "incontinentia pigmenti": (1, 5, "female", "day"),
    "Leber hereditary optic neuropathy": (18, 30, "male", "year"),
    "MELAS syndrome": (8, 20, "any", "year"),
    "MERRF syndrome": (10, 25, "any", "year"),
    "congenital pyloric stenosis": (3, 6, "male", "week"),
    "isolated cleft lip with or without cleft palate": _DAY,
    "developmental dysplasia of the hip": (1, 5, "female", "day"),
    # cytogenetics
    "Down syndrome": _DAY,
    "Edwards syndrome": _DAY,
    "Patau syndrome": _DAY,
    "Turner syndrome": (14, 17, "female", "year"),
    "Klinefelter syndrome": (18, 35, "male", "year"),
    "cri-du-chat syndrome": _MONTH,
    "Williams syndrome": (2, 8, "any", "year"),
    "DiGeorge syndrome": _MONTH,
    "chronic myeloid leukemia": (40, 70, "any", "year"),
    "Burkitt lymphoma": (6, 16, "any", "year"),
    "follicular lymphoma": (50, 72, "any", "year"),
    "mantle cell lymphoma": (55, 75, "male", "year"),
    "Ewing sarcoma": (10, 19, "any", "year"),
    # autoimmune disease
    "systemic lupus erythematosus": (20, 40, "female", "year"),
    "limited cutaneous systemic sclerosis": (35, 60, "female", "year"),
    "rheumatoid arthritis": (30, 60, "female", "year"),
    "Graves disease": (20, 45, "female", "year"),
    "Hashimoto thyroiditis": (30, 60, "female", "year"),
    "primary biliary cholangitis": (40, 65, "female", "year"),
    "Lambert-Eaton myasthenic syndrome": (50, 75, "any", "year"),
    "type 1 autoimmune hepatitis": (20, 50, "female", "year"),
    "Sjögren syndrome": (40, 65, "female", "year"),
    "type 1 diabetes mellitus": (6, 16, "any", "year"),
    "bullous pemphigoid": (70, 88, "any", "year"),
    "mixed connective tissue disease": (20, 45, "female", "year"),
}


def _with_article(phrase: str) -> str:
    number = phrase.split("-", 1)[0]
    vowel_sound = number.isdigit() and (number in ("8", "11", "18") or number.startswith("8"))
    return ("an " if vowel_sound else "a ") + phrase


def patient_phrase(subject: str, relation: str, rng: random.Random) -> str:
    """A patient fitting `subject`, with an article: "a 45-year-old woman", "an 8-month-old boy"."""
    lo, hi, sex, unit = DEMOGRAPHICS.get(subject, RELATIONS[relation].patient)
    if sex == "preterm":
        return f"a preterm newborn born at {rng.randint(28, 33)} weeks' gestation"
    age = rng.randint(lo, hi)
    if sex == "pregnant":
        return _with_article(f"{age}-year-old pregnant woman")
    if sex == "any":
        sex = rng.choice(("male", "female"))
    young = unit != "year" or age < 18
    noun = {True: {"male": "boy", "female": "girl"}, False: {"male": "man", "female": "woman"}}[young][sex]
    return _with_article(f"{age}-{unit}-old {noun}")
