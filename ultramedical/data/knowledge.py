"""A small embedded knowledge base of textbook biomedical facts, written for this project.

Each `Fact` links a subject to an object under one relation (drug -> class, disease -> first-line
treatment, ...) and carries a one-sentence justification. The sample corpus turns the facts into
questions; wrong options are drawn from the objects of other facts of the same relation, minus the
objects listed in `EXCLUDED_DISTRACTORS` that would also be defensible answers for that subject.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from ultramedical.data.knowledge_templates import RELATIONS, RelationSpec, patient_phrase


@dataclass(frozen=True)
class Fact:
    relation: str
    subject: str
    obj: str
    explanation: str


_TABLES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "drug_class": (
        ("metformin", "biguanide", "Metformin is a biguanide that lowers hepatic gluconeogenesis and "
         "improves insulin sensitivity."),
        ("glipizide", "sulfonylurea", "Glipizide is a sulfonylurea that closes ATP-sensitive potassium "
         "channels on pancreatic beta cells to stimulate insulin release."),
        ("lisinopril", "angiotensin-converting enzyme inhibitor",
         "Lisinopril inhibits angiotensin-converting enzyme, reducing angiotensin II formation and "
         "bradykinin breakdown."),
        ("losartan", "angiotensin II receptor blocker", "Losartan blocks the AT1 receptor for angiotensin "
         "II without inhibiting bradykinin breakdown."),
        ("atorvastatin", "HMG-CoA reductase inhibitor", "Atorvastatin is a statin that inhibits HMG-CoA "
         "reductase, the rate-limiting enzyme of cholesterol synthesis."),
        ("omeprazole", "proton pump inhibitor", "Omeprazole irreversibly inhibits the H+/K+ ATPase of "
         "gastric parietal cells."),
        ("famotidine", "histamine H2 receptor antagonist", "Famotidine reduces gastric acid secretion by "
         "blocking histamine H2 receptors on parietal cells."),
        ("fluoxetine", "selective serotonin reuptake inhibitor",
         "Fluoxetine selectively blocks the serotonin transporter, raising synaptic serotonin."),
        ("amitriptyline", "tricyclic antidepressant", "Amitriptyline is a tricyclic antidepressant that "
         "blocks serotonin and norepinephrine reuptake and has anticholinergic effects."),
        ("phenelzine", "monoamine oxidase inhibitor", "Phenelzine irreversibly inhibits monoamine "
         "oxidase, which is why patients must avoid tyramine-rich foods."),
        ("haloperidol", "first-generation antipsychotic", "Haloperidol is a high-potency first-generation "
         "(typical) antipsychotic that blocks dopamine D2 receptors."),
        ("furosemide", "loop diuretic", "Furosemide inhibits the Na-K-2Cl cotransporter in the thick "
         "ascending limb of the loop of Henle."),
        ("hydrochlorothiazide", "thiazide diuretic", "Hydrochlorothiazide inhibits the sodium-chloride "
         "cotransporter in the distal convoluted tubule."),
        ("spironolactone", "mineralocorticoid receptor antagonist",
         "Spironolactone competitively blocks aldosterone at the mineralocorticoid receptor and acts as a "
         "potassium-sparing diuretic."),
        ("amlodipine", "dihydropyridine calcium channel blocker",
         "Amlodipine is a dihydropyridine that blocks L-type calcium channels, mainly in vascular smooth "
         "muscle."),
        ("warfarin", "vitamin K antagonist", "Warfarin inhibits vitamin K epoxide reductase and so "
         "prevents activation of factors II, VII, IX and X."),
        ("apixaban", "direct factor Xa inhibitor", "Apixaban directly and reversibly inhibits factor Xa."),
        ("dabigatran", "direct thrombin inhibitor", "Dabigatran directly inhibits thrombin (factor IIa)."),
        ("clopidogrel", "P2Y12 ADP receptor antagonist", "Clopidogrel irreversibly blocks the platelet "
         "P2Y12 ADP receptor and so inhibits platelet aggregation."),
        ("sitagliptin", "dipeptidyl peptidase-4 inhibitor",
         "Sitagliptin inhibits dipeptidyl peptidase-4 and so prolongs the action of incretins such as "
         "GLP-1."),
        ("empagliflozin", "SGLT2 inhibitor", "Empagliflozin inhibits sodium-glucose cotransporter 2 in "
         "the proximal tubule, causing glucosuria."),
        ("pioglitazone", "thiazolidinedione", "Pioglitazone is a thiazolidinedione that activates "
         "PPAR-gamma to increase insulin sensitivity."),
        ("alendronate", "bisphosphonate", "Alendronate is a bisphosphonate that binds bone hydroxyapatite "
         "and inhibits osteoclast-mediated resorption."),
        ("diazepam", "benzodiazepine", "Diazepam is a benzodiazepine that increases the frequency of "
         "GABA-A chloride channel opening."),
        ("ciprofloxacin", "fluoroquinolone", "Ciprofloxacin is a fluoroquinolone that inhibits bacterial "
         "DNA gyrase and topoisomerase IV."),
        ("azithromycin", "macrolide", "Azithromycin is a macrolide that binds the 50S ribosomal subunit "
         "and blocks translocation."),
        ("gentamicin", "aminoglycoside", "Gentamicin is an aminoglycoside that binds the 30S ribosomal "
         "subunit and causes misreading of mRNA."),
        ("doxycycline", "tetracycline", "Doxycycline is a tetracycline that binds the 30S ribosomal "
         "subunit and blocks attachment of aminoacyl-tRNA."),
        ("metoprolol", "beta-1 selective adrenergic blocker",
         "Metoprolol is a cardioselective beta blocker that preferentially antagonizes beta-1 adrenergic "
         "receptors."),
        ("albuterol", "short-acting beta-2 agonist", "Albuterol is a short-acting beta-2 adrenergic "
         "agonist that relaxes bronchial smooth muscle."),
        ("tiotropium", "long-acting muscarinic antagonist",
         "Tiotropium is a long-acting muscarinic antagonist that blocks M3 receptors to produce "
         "bronchodilation."),
        ("sildenafil", "phosphodiesterase-5 inhibitor", "Sildenafil inhibits phosphodiesterase-5 and so "
         "raises cGMP in smooth muscle."),
        ("finasteride", "5-alpha-reductase inhibitor", "Finasteride inhibits 5-alpha-reductase and "
         "reduces conversion of testosterone to dihydrotestosterone."),
        ("ondansetron", "5-HT3 receptor antagonist", "Ondansetron blocks serotonin 5-HT3 receptors in the "
         "chemoreceptor trigger zone and the gut."),
        ("sumatriptan", "5-HT1B/1D receptor agonist", "Sumatriptan is a triptan that activates serotonin "
         "5-HT1B/1D receptors, constricting cranial vessels and inhibiting trigeminal neuropeptide "
         "release."),
    ),
    "first_line": (
        ("primary syphilis", "intramuscular benzathine penicillin G",
         "A single intramuscular dose of benzathine penicillin G is the treatment of choice for primary "
         "syphilis."),
        ("childhood absence epilepsy", "ethosuximide", "Ethosuximide blocks T-type calcium channels in "
         "thalamic neurons and is a first-line drug for childhood absence epilepsy."),
        ("trigeminal neuralgia", "carbamazepine", "Carbamazepine is the first-line drug for trigeminal "
         "neuralgia and relieves the paroxysmal facial pain in most patients."),
        ("anaphylaxis", "intramuscular epinephrine", "Intramuscular epinephrine into the anterolateral "
         "thigh is the first-line treatment of anaphylaxis and must not be delayed."),
        ("uncomplicated type 2 diabetes mellitus", "metformin",
         "Metformin is the usual first-line drug for type 2 diabetes because it is effective, "
         "weight-neutral and rarely causes hypoglycemia."),
        ("hyperkalemia with ECG changes", "intravenous calcium gluconate",
         "Intravenous calcium gluconate stabilizes the cardiac membrane and is given first when "
         "hyperkalemia causes ECG changes."),
        ("convulsive status epilepticus", "intravenous lorazepam",
         "An intravenous benzodiazepine such as lorazepam is the first-line treatment for convulsive "
         "status epilepticus."),
        ("malignant hyperthermia", "dantrolene", "Dantrolene blocks ryanodine receptor calcium release "
         "from the sarcoplasmic reticulum and is the specific treatment for malignant hyperthermia."),
        ("early localized Lyme disease", "oral doxycycline",
         "Oral doxycycline is first-line therapy for the erythema migrans of early localized Lyme disease "
         "in most patients."),
        ("Pneumocystis jirovecii pneumonia", "trimethoprim-sulfamethoxazole",
         "Trimethoprim-sulfamethoxazole is the drug of choice for both treatment and prophylaxis of "
         "Pneumocystis jirovecii pneumonia."),
        ("hairy cell leukemia", "cladribine", "The purine analog cladribine induces durable remissions in "
         "most patients with hairy cell leukemia."),
        ("acute promyelocytic leukemia", "all-trans retinoic acid",
         "All-trans retinoic acid makes the leukemic promyelocytes differentiate and is the backbone of "
         "therapy for acute promyelocytic leukemia."),
        ("chronic-phase chronic myeloid leukemia", "imatinib",
         "Imatinib inhibits the BCR-ABL1 tyrosine kinase that drives chronic myeloid leukemia."),
        ("symptomatic prolactinoma", "cabergoline", "The dopamine agonist cabergoline suppresses "
         "prolactin and shrinks most prolactinomas, so it is used before considering surgery."),
        ("myasthenia gravis", "pyridostigmine", "Pyridostigmine, an acetylcholinesterase inhibitor, is "
         "the first-line symptomatic treatment of myasthenia gravis."),
        ("scabies", "topical permethrin", "Topical permethrin 5% cream applied from the neck down is a "
         "first-line treatment for scabies."),
        ("essential tremor", "propranolol", "Propranolol, like primidone, is a first-line drug for "
         "disabling essential tremor."),
        ("pheochromocytoma (preoperative preparation)", "phenoxybenzamine",
         "Preoperative alpha blockade with phenoxybenzamine prevents hypertensive crises and must precede "
         "any beta blockade in pheochromocytoma."),
        ("primary hypothyroidism", "levothyroxine", "Levothyroxine (synthetic T4) is the standard "
         "replacement therapy for primary hypothyroidism."),
        ("pernicious anemia", "intramuscular vitamin B12", "Pernicious anemia prevents intrinsic "
         "factor-mediated absorption, so vitamin B12 is classically replaced by intramuscular injection."),
        ("paroxysmal supraventricular tachycardia refractory to vagal maneuvers", "intravenous adenosine",
         "Adenosine transiently blocks AV nodal conduction and terminates most re-entrant "
         "supraventricular tachycardias when vagal maneuvers fail."),
        ("torsades de pointes", "intravenous magnesium sulfate",
         "Intravenous magnesium sulfate is first-line for torsades de pointes, even when the serum "
         "magnesium level is normal."),
        ("Candida esophagitis", "oral fluconazole", "Systemic therapy with oral fluconazole is first-line "
         "for Candida esophagitis because topical agents are inadequate."),
        ("herpes simplex encephalitis", "intravenous acyclovir",
         "Intravenous acyclovir started promptly in herpes simplex encephalitis markedly reduces "
         "mortality."),
        ("cryptococcal meningitis", "amphotericin B plus flucytosine",
         "Induction therapy for cryptococcal meningitis combines amphotericin B with flucytosine."),
        ("uncomplicated gonorrhea", "intramuscular ceftriaxone",
         "A single intramuscular dose of ceftriaxone is the recommended treatment for uncomplicated "
         "gonorrhea."),
        ("Kawasaki disease", "intravenous immunoglobulin plus aspirin",
         "Intravenous immunoglobulin with aspirin given early in Kawasaki disease reduces the risk of "
         "coronary artery aneurysms."),
        ("cluster headache (acute attack)", "high-flow 100% oxygen",
         "Inhaled high-flow 100% oxygen aborts many cluster headache attacks and is a first-line acute "
         "treatment."),
    ),
    "deficiency": (
        ("vitamin C", "scurvy", "Vitamin C is needed to hydroxylate proline and lysine in collagen, so "
         "its deficiency causes scurvy with bleeding gums and perifollicular hemorrhages."),
        ("thiamine (vitamin B1)", "beriberi", "Thiamine is a cofactor of pyruvate and alpha-ketoglutarate "
         "dehydrogenase, and its deficiency causes beriberi and Wernicke encephalopathy."),
        ("niacin (vitamin B3)", "pellagra", "Niacin deficiency causes pellagra, with dermatitis, diarrhea "
         "and dementia."),
        ("vitamin D", "rickets", "In children, vitamin D deficiency impairs mineralization of growing "
         "bone and causes rickets."),
        ("vitamin B12", "subacute combined degeneration of the spinal cord",
         "Vitamin B12 deficiency causes demyelination of the dorsal columns and lateral corticospinal "
         "tracts as well as megaloblastic anemia."),
        ("folate", "fetal neural tube defects", "Inadequate maternal folate around conception increases "
         "the risk of neural tube defects, which periconceptional folic acid helps prevent."),
        ("vitamin A", "night blindness", "Vitamin A is needed to regenerate rhodopsin, so its deficiency "
         "first causes night blindness."),
        ("vitamin K", "hemorrhagic disease of the newborn",
         "Newborns have low vitamin K stores, so without prophylaxis they can develop vitamin K "
         "deficiency bleeding (hemorrhagic disease of the newborn)."),
        ("iodine", "endemic goiter", "Iodine deficiency reduces thyroid hormone synthesis, and the "
         "resulting TSH stimulation enlarges the gland (endemic goiter)."),
        ("iron", "microcytic hypochromic anemia", "Iron deficiency limits heme synthesis and produces "
         "microcytic hypochromic anemia."),
        ("zinc", "acrodermatitis enteropathica", "Zinc deficiency, as in acrodermatitis enteropathica, "
         "causes periorificial and acral dermatitis, alopecia and diarrhea."),
        ("vitamin E", "hemolytic anemia", "Vitamin E protects red cell membranes from oxidative damage, "
         "so its deficiency, notably in preterm infants, causes hemolytic anemia."),
        ("pyridoxine (vitamin B6)", "sideroblastic anemia",
         "Pyridoxine is the cofactor of ALA synthase, so its deficiency impairs heme synthesis and can "
         "cause sideroblastic anemia."),
        ("protein (with adequate calories)", "kwashiorkor",
         "Protein deficiency with relatively preserved calorie intake causes kwashiorkor, with edema, "
         "fatty liver and skin lesions."),
        ("total energy (calories and protein)", "marasmus",
         "Severe deficiency of total energy intake causes marasmus, with muscle wasting and loss of "
         "subcutaneous fat but no edema."),
        ("selenium", "Keshan disease", "Selenium deficiency causes Keshan disease, an endemic "
         "cardiomyopathy."),
    ),
    "organism": (
        ("Clostridioides difficile", "pseudomembranous colitis",
         "Toxins A and B of Clostridioides difficile damage the colonic mucosa and cause pseudomembranous "
         "colitis, typically after antibiotic exposure."),
        ("Treponema pallidum", "syphilis", "The spirochete Treponema pallidum is the cause of syphilis."),
        ("Borrelia burgdorferi", "Lyme disease", "Borrelia burgdorferi, transmitted by Ixodes ticks, "
         "causes Lyme disease."),
        ("Mycobacterium leprae", "leprosy", "Mycobacterium leprae, an acid-fast bacillus with a "
         "predilection for skin and peripheral nerves, causes leprosy."),
        ("Corynebacterium diphtheriae", "diphtheria", "Toxigenic Corynebacterium diphtheriae makes an "
         "exotoxin that inactivates EF-2 and causes diphtheria with a pharyngeal pseudomembrane."),
        ("Bordetella pertussis", "whooping cough", "Bordetella pertussis causes whooping cough, with "
         "paroxysms of coughing followed by an inspiratory whoop."),
        ("Vibrio cholerae", "cholera", "Cholera toxin from Vibrio cholerae activates adenylate cyclase in "
         "enterocytes and causes profuse rice-water diarrhea."),
        ("Rickettsia rickettsii", "Rocky Mountain spotted fever",
         "Rickettsia rickettsii, transmitted by Dermacentor ticks, causes Rocky Mountain spotted fever "
         "with a rash that starts on the wrists and ankles."),
        ("Epstein-Barr virus", "infectious mononucleosis", "Epstein-Barr virus infects B cells through "
         "CD21 and causes infectious mononucleosis with fever, pharyngitis and lymphadenopathy."),
        ("Plasmodium falciparum", "malaria", "Plasmodium falciparum, transmitted by Anopheles mosquitoes, "
         "causes the most severe form of malaria."),
        ("Trypanosoma cruzi", "Chagas disease", "Trypanosoma cruzi, spread by triatomine bugs, causes "
         "Chagas disease with cardiomyopathy and megaesophagus."),
        ("Yersinia pestis", "plague", "Yersinia pestis, transmitted by flea bites, causes bubonic and "
         "pneumonic plague."),
        ("Bacillus anthracis", "anthrax", "Bacillus anthracis causes anthrax, classically a painless "
         "cutaneous black eschar."),
        ("Clostridium tetani", "tetanus", "Tetanospasmin from Clostridium tetani blocks release of "
         "inhibitory neurotransmitters and causes the spastic paralysis of tetanus."),
        ("Clostridium botulinum", "botulism", "Botulinum toxin from Clostridium botulinum blocks "
         "acetylcholine release and causes the descending flaccid paralysis of botulism."),
        ("Legionella pneumophila", "Legionnaires disease", "Legionella pneumophila, inhaled from "
         "contaminated water aerosols, causes Legionnaires disease, an atypical pneumonia often with "
         "hyponatremia."),
        ("Coxiella burnetii", "Q fever", "Coxiella burnetii, inhaled from infected livestock products, "
         "causes Q fever."),
        ("Tropheryma whipplei", "Whipple disease", "Tropheryma whipplei causes Whipple disease, with "
         "malabsorption, arthralgia and PAS-positive macrophages in the small bowel."),
        ("Bartonella henselae", "cat scratch disease", "Bartonella henselae, transmitted by cat scratches "
         "or bites, causes cat scratch disease with regional lymphadenopathy."),
        ("Francisella tularensis", "tularemia", "Francisella tularensis, acquired from rabbits or ticks, "
         "causes tularemia."),
        ("human herpesvirus 8", "Kaposi sarcoma", "Human herpesvirus 8 is the cause of Kaposi sarcoma, "
         "especially in immunosuppressed patients."),
        ("parvovirus B19", "erythema infectiosum", "Parvovirus B19 causes erythema infectiosum (fifth "
         "disease), with a slapped-cheek rash in children."),
        ("Leishmania donovani", "visceral leishmaniasis", "Leishmania donovani, transmitted by sandflies, "
         "causes visceral leishmaniasis (kala-azar) with fever, hepatosplenomegaly and pancytopenia."),
        ("Chlamydia trachomatis serovars A to C", "trachoma",
         "Chlamydia trachomatis serovars A to C cause trachoma, a leading infectious cause of blindness."),
    ),
    "hormone_source": (
        ("insulin", "pancreatic beta cells", "Insulin is synthesized and secreted by the beta cells of "
         "the pancreatic islets of Langerhans."),
        ("glucagon", "pancreatic alpha cells", "Glucagon is secreted by the alpha cells of the pancreatic "
         "islets in response to hypoglycemia."),
        ("cortisol", "zona fasciculata of the adrenal cortex",
         "Cortisol is produced mainly in the zona fasciculata of the adrenal cortex under ACTH "
         "stimulation."),
        ("aldosterone", "zona glomerulosa of the adrenal cortex",
         "Aldosterone is made in the zona glomerulosa, which expresses aldosterone synthase, in response "
         "to angiotensin II and hyperkalemia."),
        ("epinephrine", "adrenal medulla", "Chromaffin cells of the adrenal medulla secrete epinephrine "
         "because they express PNMT, which converts norepinephrine to epinephrine."),
        ("calcitonin", "parafollicular C cells of the thyroid",
         "Calcitonin is secreted by the parafollicular C cells of the thyroid in response to "
         "hypercalcemia."),
        ("parathyroid hormone", "chief cells of the parathyroid glands",
         "Parathyroid hormone is secreted by the chief cells of the parathyroid glands when ionized "
         "calcium falls."),
        ("prolactin", "lactotrophs of the anterior pituitary",
         "Prolactin is secreted by anterior pituitary lactotrophs and is tonically inhibited by "
         "hypothalamic dopamine."),
        ("growth hormone", "somatotrophs of the anterior pituitary",
         "Growth hormone is secreted by somatotrophs of the anterior pituitary under stimulation by GHRH."),
        ("adrenocorticotropic hormone", "corticotrophs of the anterior pituitary",
         "ACTH is cleaved from pro-opiomelanocortin in the corticotrophs of the anterior pituitary."),
        ("antidiuretic hormone", "posterior pituitary", "Antidiuretic hormone is synthesized in "
         "hypothalamic neurons and released into the circulation from the posterior pituitary."),
        ("thyroxine", "thyroid follicular cells", "Thyroxine is synthesized by thyroid follicular cells "
         "through iodination of thyroglobulin."),
        ("erythropoietin", "peritubular interstitial cells of the kidney",
         "Erythropoietin is produced mainly by peritubular interstitial fibroblasts of the renal cortex "
         "in response to hypoxia."),
        ("renin", "juxtaglomerular cells of the kidney", "Renin is released by the juxtaglomerular cells "
         "of the afferent arteriole in response to reduced renal perfusion."),
        ("gastrin", "G cells of the gastric antrum", "Gastrin is secreted by G cells of the gastric "
         "antrum and duodenum and stimulates acid secretion."),
        ("secretin", "S cells of the duodenum", "Secretin is released by duodenal S cells in response to "
         "acid and stimulates pancreatic bicarbonate secretion."),
        ("cholecystokinin", "I cells of the duodenum and jejunum",
         "Cholecystokinin is released by I cells of the duodenum and jejunum in response to fatty acids "
         "and amino acids."),
        ("melatonin", "pineal gland", "Melatonin is synthesized from serotonin in the pineal gland, "
         "mainly during darkness."),
        ("testosterone", "Leydig cells of the testis", "In men, testosterone is produced mainly by "
         "testicular Leydig cells under LH stimulation."),
        ("atrial natriuretic peptide", "atrial cardiomyocytes",
         "Atrial natriuretic peptide is released by atrial myocytes in response to atrial stretch."),
        ("progesterone during the luteal phase", "corpus luteum",
         "After ovulation the corpus luteum secretes progesterone under the influence of LH."),
        ("human chorionic gonadotropin", "syncytiotrophoblast",
         "Human chorionic gonadotropin is secreted by the placental syncytiotrophoblast and maintains the "
         "corpus luteum in early pregnancy."),
    ),
    "enzyme_disorder": (
        ("phenylalanine hydroxylase", "phenylketonuria", "Phenylalanine hydroxylase deficiency prevents "
         "conversion of phenylalanine to tyrosine and causes phenylketonuria."),
        ("hexosaminidase A", "Tay-Sachs disease", "Hexosaminidase A deficiency causes GM2 ganglioside "
         "accumulation in Tay-Sachs disease."),
        ("glucocerebrosidase", "Gaucher disease", "Glucocerebrosidase deficiency causes glucocerebroside "
         "to accumulate in macrophages (Gaucher cells) in Gaucher disease."),
        ("sphingomyelinase", "Niemann-Pick disease", "Acid sphingomyelinase deficiency causes "
         "sphingomyelin accumulation in Niemann-Pick disease types A and B."),
        ("alpha-galactosidase A", "Fabry disease", "Alpha-galactosidase A deficiency leads to "
         "globotriaosylceramide accumulation in Fabry disease."),
        ("galactocerebrosidase", "Krabbe disease", "Galactocerebrosidase deficiency causes accumulation "
         "of galactocerebroside and psychosine, which destroys myelin in Krabbe disease."),
        ("arylsulfatase A", "metachromatic leukodystrophy",
         "Arylsulfatase A deficiency causes sulfatide accumulation and demyelination in metachromatic "
         "leukodystrophy."),
        ("alpha-L-iduronidase", "Hurler syndrome", "Alpha-L-iduronidase deficiency causes heparan and "
         "dermatan sulfate to accumulate in Hurler syndrome."),
        ("iduronate-2-sulfatase", "Hunter syndrome", "Iduronate-2-sulfatase deficiency causes Hunter "
         "syndrome, an X-linked mucopolysaccharidosis without corneal clouding."),
        ("glucose-6-phosphatase", "von Gierke disease", "Glucose-6-phosphatase deficiency blocks the last "
         "step of gluconeogenesis and glycogenolysis, causing von Gierke disease (glycogen storage "
         "disease type I)."),
        ("lysosomal acid alpha-glucosidase", "Pompe disease",
         "Lysosomal acid alpha-glucosidase (acid maltase) deficiency causes Pompe disease, with glycogen "
         "accumulating in heart and skeletal muscle."),
        ("muscle glycogen phosphorylase", "McArdle disease",
         "Myophosphorylase deficiency causes McArdle disease with exercise-induced cramps and "
         "myoglobinuria."),
        ("homogentisate 1,2-dioxygenase", "alkaptonuria", "Homogentisate 1,2-dioxygenase deficiency "
         "causes homogentisic acid accumulation in alkaptonuria, with dark urine and ochronosis."),
        ("branched-chain alpha-ketoacid dehydrogenase", "maple syrup urine disease",
         "Deficiency of the branched-chain alpha-ketoacid dehydrogenase complex causes maple syrup urine "
         "disease."),
        ("hypoxanthine-guanine phosphoribosyltransferase", "Lesch-Nyhan syndrome",
         "Absent HGPRT activity impairs purine salvage and causes hyperuricemia and self-mutilation in "
         "Lesch-Nyhan syndrome."),
        ("adenosine deaminase", "severe combined immunodeficiency",
         "Adenosine deaminase deficiency lets toxic deoxyadenosine metabolites accumulate in lymphocytes "
         "and causes severe combined immunodeficiency."),
        ("21-hydroxylase", "congenital adrenal hyperplasia",
         "21-hydroxylase deficiency, the most common cause of congenital adrenal hyperplasia, impairs "
         "cortisol and aldosterone synthesis."),
        ("galactose-1-phosphate uridylyltransferase", "classic galactosemia",
         "Galactose-1-phosphate uridylyltransferase deficiency causes classic galactosemia."),
        ("cystathionine beta-synthase", "homocystinuria", "Cystathionine beta-synthase deficiency is the "
         "most common cause of homocystinuria."),
        ("uroporphyrinogen decarboxylase", "porphyria cutanea tarda",
         "Reduced hepatic uroporphyrinogen decarboxylase activity causes porphyria cutanea tarda with "
         "photosensitive blistering lesions."),
        ("porphobilinogen deaminase", "acute intermittent porphyria",
         "Porphobilinogen deaminase (hydroxymethylbilane synthase) deficiency causes acute intermittent "
         "porphyria."),
        ("tyrosinase", "oculocutaneous albinism", "Tyrosinase deficiency prevents melanin synthesis and "
         "causes oculocutaneous albinism type 1."),
    ),
    "adverse_effect": (
        ("amiodarone", "pulmonary fibrosis", "Amiodarone can cause interstitial pneumonitis progressing "
         "to pulmonary fibrosis, so lung function is monitored during therapy."),
        ("lisinopril", "dry cough", "ACE inhibitors such as lisinopril cause a dry cough through "
         "accumulation of bradykinin."),
        ("spironolactone", "gynecomastia", "The antiandrogen effect of spironolactone causes gynecomastia "
         "in men."),
        ("vincristine", "peripheral neuropathy", "Vincristine disrupts axonal microtubules and causes "
         "dose-limiting peripheral neuropathy."),
        ("doxorubicin", "dilated cardiomyopathy", "Doxorubicin causes cumulative dose-dependent "
         "cardiotoxicity that leads to dilated cardiomyopathy."),
        ("cyclophosphamide", "hemorrhagic cystitis", "The cyclophosphamide metabolite acrolein injures "
         "the bladder and causes hemorrhagic cystitis, which mesna helps prevent."),
        ("cisplatin", "nephrotoxicity and ototoxicity", "Cisplatin is known for nephrotoxicity and "
         "ototoxicity, so patients receive vigorous hydration and hearing is monitored."),
        ("chloramphenicol", "aplastic anemia", "Chloramphenicol can cause idiosyncratic, irreversible "
         "aplastic anemia in addition to dose-related marrow suppression."),
        ("lamotrigine", "Stevens-Johnson syndrome", "Lamotrigine can cause Stevens-Johnson syndrome, "
         "especially with rapid dose escalation or concurrent valproate."),
        ("phenytoin", "gingival hyperplasia", "Chronic phenytoin therapy characteristically causes "
         "gingival hyperplasia."),
        ("clozapine", "agranulocytosis", "Clozapine can cause agranulocytosis, so absolute neutrophil "
         "counts are monitored during treatment."),
        ("ethambutol", "optic neuritis", "Ethambutol causes dose-related optic neuritis with reduced "
         "visual acuity and red-green color blindness."),
        ("hydralazine", "drug-induced lupus", "Hydralazine is a classic cause of drug-induced lupus with "
         "anti-histone antibodies."),
        ("atorvastatin", "myopathy", "Statins such as atorvastatin can cause myalgia and myopathy, rarely "
         "progressing to rhabdomyolysis."),
        ("lithium", "nephrogenic diabetes insipidus", "Lithium interferes with ADH signaling in "
         "collecting duct cells and causes nephrogenic diabetes insipidus."),
        ("ciprofloxacin", "tendon rupture", "Fluoroquinolones such as ciprofloxacin cause tendinopathy "
         "and Achilles tendon rupture, especially in older adults taking glucocorticoids."),
        ("vancomycin", "red man syndrome", "Rapid vancomycin infusion triggers non-allergic histamine "
         "release with flushing of the face and upper body (red man syndrome)."),
        ("metformin", "lactic acidosis", "Metformin can rarely cause lactic acidosis, particularly with "
         "renal failure or tissue hypoperfusion."),
        ("tetracycline", "discoloration of developing teeth",
         "Tetracyclines chelate calcium in developing teeth and cause permanent tooth discoloration in "
         "young children."),
        ("minoxidil", "hypertrichosis", "Systemic minoxidil causes hypertrichosis, an effect exploited in "
         "topical treatment of hair loss."),
        ("rifampin", "orange-red discoloration of body fluids",
         "Rifampin imparts a harmless orange-red color to urine, tears and sweat."),
        ("digoxin", "yellow-tinted vision", "Digoxin toxicity characteristically causes visual "
         "disturbances such as yellow-tinted vision (xanthopsia)."),
        ("warfarin", "skin necrosis", "Early in warfarin therapy a fall in protein C can cause "
         "microvascular thrombosis and skin necrosis."),
        ("heparin", "heparin-induced thrombocytopenia", "Heparin can induce antibodies against platelet "
         "factor 4-heparin complexes, causing thrombocytopenia with paradoxical thrombosis."),
        ("methyldopa", "Coombs-positive hemolytic anemia", "Methyldopa can induce red cell autoantibodies "
         "that give a positive direct Coombs test and hemolytic anemia."),
        ("valproate", "fetal neural tube defects", "Valproate exposure in early pregnancy markedly "
         "increases the risk of neural tube defects such as spina bifida."),
    ),
    "antidote": (
        ("acetaminophen", "N-acetylcysteine", "N-acetylcysteine replenishes glutathione, which detoxifies "
         "the hepatotoxic acetaminophen metabolite NAPQI."),
        ("opioid", "naloxone", "Naloxone is a competitive opioid receptor antagonist that reverses "
         "opioid-induced respiratory depression."),
        ("benzodiazepine", "flumazenil", "Flumazenil competitively antagonizes the benzodiazepine site of "
         "the GABA-A receptor, although it can precipitate seizures in dependent patients."),
        ("organophosphate", "atropine plus pralidoxime", "Atropine blocks the muscarinic effects of "
         "excess acetylcholine and pralidoxime regenerates acetylcholinesterase in organophosphate "
         "poisoning."),
        ("methanol", "fomepizole", "Fomepizole inhibits alcohol dehydrogenase and prevents conversion of "
         "methanol to toxic formic acid."),
        ("ethylene glycol", "fomepizole", "Fomepizole inhibits alcohol dehydrogenase and prevents "
         "formation of the toxic metabolites of ethylene glycol such as oxalate."),
        ("cyanide", "hydroxocobalamin", "Hydroxocobalamin binds cyanide to form cyanocobalamin, which is "
         "excreted in the urine."),
        ("carbon monoxide", "100% oxygen", "High-flow 100% oxygen, or hyperbaric oxygen in severe cases, "
         "shortens the half-life of carboxyhemoglobin."),
        ("heparin", "protamine sulfate", "Protamine sulfate is a positively charged protein that binds "
         "and neutralizes heparin."),
        ("warfarin", "vitamin K", "Vitamin K restores synthesis of functional clotting factors and, with "
         "prothrombin complex concentrate when bleeding, reverses warfarin."),
        ("digoxin", "digoxin immune Fab", "Digoxin-specific antibody fragments bind digoxin and rapidly "
         "reverse life-threatening toxicity."),
        ("iron", "deferoxamine", "Deferoxamine chelates free iron and is the antidote for severe iron "
         "poisoning."),
        ("arsenic", "dimercaprol", "Dimercaprol is a chelating agent used to treat acute arsenic poisoning."),
        ("dapsone", "methylene blue", "Dapsone toxicity causes methemoglobinemia, which methylene blue "
         "reverses by promoting the reduction of methemoglobin."),
        ("beta-blocker", "glucagon", "Glucagon raises cardiac cAMP independently of beta receptors and is "
         "used for beta-blocker overdose."),
        ("atropine", "physostigmine", "Physostigmine is a cholinesterase inhibitor that crosses the "
         "blood-brain barrier and reverses anticholinergic toxicity."),
        ("tricyclic antidepressant", "sodium bicarbonate", "Sodium bicarbonate counteracts sodium channel "
         "blockade and narrows the QRS complex in tricyclic antidepressant toxicity."),
        ("dabigatran", "idarucizumab", "Idarucizumab is a monoclonal antibody fragment that binds "
         "dabigatran and reverses its anticoagulant effect."),
        ("apixaban", "andexanet alfa", "Andexanet alfa is a decoy factor Xa protein that binds and "
         "reverses factor Xa inhibitors such as apixaban."),
        ("isoniazid", "pyridoxine", "High-dose pyridoxine restores GABA synthesis and controls seizures "
         "in isoniazid overdose."),
        ("thallium", "Prussian blue", "Oral Prussian blue binds thallium in the gut and interrupts its "
         "enterohepatic recirculation."),
        ("sulfonylurea", "octreotide", "Octreotide suppresses insulin release and prevents recurrent "
         "hypoglycemia after sulfonylurea overdose."),
        ("methotrexate", "leucovorin", "Leucovorin (folinic acid) bypasses dihydrofolate reductase and "
         "rescues normal cells from methotrexate toxicity."),
    ),
    "nerve_muscle": (
        ("long thoracic nerve", "serratus anterior", "The long thoracic nerve innervates serratus "
         "anterior, and its injury causes a winged scapula."),
        ("axillary nerve", "deltoid", "The axillary nerve innervates the deltoid and teres minor and is "
         "at risk with fractures of the surgical neck of the humerus."),
        ("musculocutaneous nerve", "biceps brachii", "The musculocutaneous nerve supplies biceps brachii, "
         "brachialis and coracobrachialis, the main elbow flexors."),
        ("radial nerve", "wrist and finger extensors", "The radial nerve supplies the wrist and finger "
         "extensors, so its injury in the spiral groove causes wrist drop."),
        ("deep branch of the ulnar nerve", "interosseous muscles of the hand",
         "The deep branch of the ulnar nerve innervates the palmar and dorsal interossei, which adduct "
         "and abduct the fingers."),
        ("recurrent branch of the median nerve", "thenar muscles",
         "The recurrent branch of the median nerve supplies the thenar muscles, including opponens "
         "pollicis."),
        ("common fibular nerve", "ankle dorsiflexors", "Through its deep branch the common fibular nerve "
         "supplies the ankle dorsiflexors, so its injury at the fibular neck causes foot drop."),
        ("tibial nerve", "ankle plantar flexors", "The tibial nerve supplies the posterior compartment of "
         "the leg, including gastrocnemius and soleus, which plantar flex the ankle."),
        ("femoral nerve", "quadriceps femoris", "The femoral nerve innervates quadriceps femoris, the "
         "extensor of the knee."),
        ("obturator nerve", "thigh adductors", "The obturator nerve supplies the adductor muscles of the "
         "medial thigh."),
        ("superior gluteal nerve", "gluteus medius and minimus",
         "The superior gluteal nerve supplies gluteus medius and minimus, and its injury produces a "
         "Trendelenburg gait."),
        ("inferior gluteal nerve", "gluteus maximus", "The inferior gluteal nerve supplies gluteus "
         "maximus, the main hip extensor used to rise from a chair or climb stairs."),
        ("facial nerve", "muscles of facial expression", "The facial nerve supplies the muscles of facial "
         "expression, so its lesion causes ipsilateral facial weakness."),
        ("mandibular division of the trigeminal nerve", "muscles of mastication",
         "The mandibular division of the trigeminal nerve supplies the muscles of mastication."),
        ("hypoglossal nerve", "intrinsic muscles of the tongue",
         "The hypoglossal nerve supplies the intrinsic and most extrinsic tongue muscles, so a lesion "
         "makes the protruded tongue deviate to that side."),
        ("spinal accessory nerve", "sternocleidomastoid and trapezius",
         "The spinal accessory nerve supplies sternocleidomastoid and trapezius."),
        ("trochlear nerve", "superior oblique", "The trochlear nerve supplies the superior oblique "
         "muscle, which depresses the adducted eye."),
        ("abducens nerve", "lateral rectus", "The abducens nerve supplies the lateral rectus, which "
         "abducts the eye."),
        ("phrenic nerve", "diaphragm", "The phrenic nerve, from C3 to C5, is the motor supply of the "
         "diaphragm."),
        ("recurrent laryngeal nerve", "posterior cricoarytenoid",
         "The recurrent laryngeal nerve supplies all intrinsic laryngeal muscles except cricothyroid, "
         "including posterior cricoarytenoid, the only abductor of the vocal cords."),
        ("external branch of the superior laryngeal nerve", "cricothyroid",
         "The external branch of the superior laryngeal nerve supplies cricothyroid, which tenses the "
         "vocal cords."),
        ("thoracodorsal nerve", "latissimus dorsi", "The thoracodorsal nerve supplies latissimus dorsi, "
         "which extends, adducts and medially rotates the arm."),
        ("suprascapular nerve", "supraspinatus and infraspinatus",
         "The suprascapular nerve supplies supraspinatus and infraspinatus."),
        ("dorsal scapular nerve", "rhomboid muscles", "The dorsal scapular nerve supplies the rhomboid "
         "muscles and levator scapulae."),
    ),
    "hallmark_finding": (
        ("acute myeloid leukemia", "Auer rods", "Auer rods, needle-shaped inclusions of fused azurophilic "
         "granules in myeloblasts, are characteristic of acute myeloid leukemia."),
        ("Hodgkin lymphoma", "Reed-Sternberg cells", "Large binucleate CD15-positive, CD30-positive "
         "Reed-Sternberg cells are the hallmark of classic Hodgkin lymphoma."),
        ("rabies", "Negri bodies", "Negri bodies are eosinophilic cytoplasmic inclusions in neurons, "
         "classically hippocampal and Purkinje cells, in rabies."),
        ("Parkinson disease", "Lewy bodies", "Lewy bodies are alpha-synuclein inclusions in the surviving "
         "dopaminergic neurons of the substantia nigra in Parkinson disease."),
        ("Alzheimer disease", "neurofibrillary tangles and amyloid plaques",
         "Extracellular beta-amyloid plaques and intracellular tau neurofibrillary tangles are the "
         "neuropathological hallmarks of Alzheimer disease."),
        ("papillary thyroid carcinoma", "Orphan Annie eye nuclei",
         "Papillary thyroid carcinoma shows optically clear Orphan Annie eye nuclei with nuclear grooves "
         "and psammoma bodies."),
        ("acute rheumatic carditis", "Aschoff bodies", "Aschoff bodies, foci of fibrinoid necrosis "
         "surrounded by Anitschkow cells, are characteristic of rheumatic carditis."),
        ("Wilson disease", "Kayser-Fleischer rings", "Copper deposition in Descemet membrane produces "
         "Kayser-Fleischer rings in Wilson disease."),
        ("measles", "Koplik spots", "Koplik spots, small white lesions on the buccal mucosa, appear "
         "before the rash of measles."),
        ("alcoholic hepatitis", "Mallory-Denk bodies", "Mallory-Denk bodies, eosinophilic inclusions of "
         "damaged keratin filaments in hepatocytes, are characteristic of alcoholic hepatitis."),
        ("sarcoidosis", "noncaseating granulomas", "Sarcoidosis is characterized by noncaseating "
         "epithelioid granulomas, typically in hilar lymph nodes and lungs."),
        ("tuberculosis", "caseating granulomas", "Mycobacterium tuberculosis infection produces "
         "granulomas with central caseous necrosis."),
        ("celiac disease", "villous atrophy with crypt hyperplasia",
         "Duodenal biopsy in celiac disease shows villous atrophy, crypt hyperplasia and intraepithelial "
         "lymphocytosis."),
        ("Whipple disease", "PAS-positive foamy macrophages in the lamina propria",
         "In Whipple disease the lamina propria of the small bowel is packed with PAS-positive foamy "
         "macrophages."),
        ("Goodpasture syndrome", "linear IgG deposits along the glomerular basement membrane",
         "Anti-GBM antibodies give linear IgG staining along the glomerular basement membrane on "
         "immunofluorescence."),
        ("poststreptococcal glomerulonephritis", "subepithelial immune complex humps",
         "Poststreptococcal glomerulonephritis shows subepithelial immune complex humps on electron "
         "microscopy."),
        ("minimal change disease", "effacement of podocyte foot processes",
         "In minimal change disease light microscopy is normal and electron microscopy shows diffuse "
         "effacement of podocyte foot processes."),
        ("cystic fibrosis", "elevated sweat chloride concentration",
         "Defective CFTR chloride transport raises the sweat chloride concentration, the classic "
         "diagnostic test for cystic fibrosis."),
        ("chronic granulomatous disease", "abnormal dihydrorhodamine test",
         "Absent NADPH oxidase activity in chronic granulomatous disease gives an abnormal "
         "dihydrorhodamine flow cytometry test."),
        ("pheochromocytoma", "elevated plasma free metanephrines",
         "Plasma free metanephrines, metabolites of catecholamines, are the most sensitive screening test "
         "for pheochromocytoma."),
        ("carcinoid syndrome", "elevated urinary 5-hydroxyindoleacetic acid",
         "Serotonin from carcinoid tumors is metabolized to 5-hydroxyindoleacetic acid, which is elevated "
         "in the urine."),
        ("lead poisoning", "basophilic stippling of erythrocytes",
         "Lead inhibits pyrimidine 5'-nucleotidase, leaving ribosomal RNA aggregates that appear as "
         "basophilic stippling of red cells."),
        ("multiple myeloma", "monoclonal M spike on serum protein electrophoresis",
         "Multiple myeloma produces a monoclonal immunoglobulin that appears as an M spike on serum "
         "protein electrophoresis."),
    ),
    "inheritance": (
        ("Huntington disease", "autosomal dominant", "Huntington disease is autosomal dominant, caused by "
         "a CAG repeat expansion in HTT that shows anticipation."),
        ("neurofibromatosis type 1", "autosomal dominant", "Neurofibromatosis type 1 results from an "
         "autosomal dominant loss-of-function variant in the NF1 tumor suppressor gene."),
        ("Marfan syndrome", "autosomal dominant", "Marfan syndrome is an autosomal dominant disorder "
         "caused by variants in FBN1, which encodes fibrillin-1."),
        ("familial hypercholesterolemia", "autosomal dominant",
         "Familial hypercholesterolemia, usually due to LDL receptor variants, is autosomal dominant, "
         "with more severe disease in homozygotes."),
        ("achondroplasia", "autosomal dominant", "Achondroplasia is autosomal dominant, caused by an "
         "activating FGFR3 variant that usually arises de novo."),
        ("familial adenomatous polyposis", "autosomal dominant",
         "Familial adenomatous polyposis is an autosomal dominant disorder caused by germline APC "
         "variants."),
        ("cystic fibrosis", "autosomal recessive", "Cystic fibrosis is autosomal recessive, caused by "
         "biallelic CFTR variants."),
        ("sickle cell disease", "autosomal recessive", "Sickle cell disease is autosomal recessive, "
         "typically homozygosity for the HbS beta-globin variant."),
        ("phenylketonuria", "autosomal recessive", "Phenylketonuria is an autosomal recessive deficiency "
         "of phenylalanine hydroxylase."),
        ("hereditary hemochromatosis", "autosomal recessive",
         "HFE-related hereditary hemochromatosis is autosomal recessive, most often due to homozygous "
         "C282Y variants."),
        ("Friedreich ataxia", "autosomal recessive", "Friedreich ataxia is autosomal recessive, caused by "
         "a GAA repeat expansion in the frataxin gene."),
        ("spinal muscular atrophy", "autosomal recessive", "Spinal muscular atrophy is autosomal "
         "recessive, caused by biallelic loss of SMN1."),
        ("Duchenne muscular dystrophy", "X-linked recessive",
         "Duchenne muscular dystrophy is X-linked recessive, usually caused by frameshift deletions in "
         "the dystrophin gene, and mainly affects boys."),
        ("hemophilia A", "X-linked recessive", "Hemophilia A, factor VIII deficiency, is X-linked "
         "recessive."),
        ("Bruton agammaglobulinemia", "X-linked recessive",
         "Bruton agammaglobulinemia is X-linked recessive, caused by BTK variants that block B-cell "
         "maturation."),
        ("Wiskott-Aldrich syndrome", "X-linked recessive", "Wiskott-Aldrich syndrome is X-linked "
         "recessive, caused by variants in the WAS gene."),
        ("G6PD deficiency", "X-linked recessive", "G6PD deficiency is X-linked recessive, so hemizygous "
         "males are most often affected."),
        ("Rett syndrome", "X-linked dominant", "Rett syndrome is X-linked dominant, caused by MECP2 "
         "variants that are usually de novo, and occurs almost only in girls."),
        ("incontinentia pigmenti", "X-linked dominant", "Incontinentia pigmenti is X-linked dominant and "
         "is usually lethal in affected males."),
        ("Leber hereditary optic neuropathy", "mitochondrial",
         "Leber hereditary optic neuropathy is caused by mitochondrial DNA variants and is transmitted "
         "only through the mother."),
        ("MELAS syndrome", "mitochondrial", "MELAS syndrome is usually caused by a mitochondrial tRNA-Leu "
         "variant and is inherited maternally."),
        ("MERRF syndrome", "mitochondrial", "MERRF syndrome is caused by mitochondrial DNA variants, most "
         "often in tRNA-Lys, and shows maternal inheritance with heteroplasmy."),
        ("congenital pyloric stenosis", "multifactorial", "Infantile hypertrophic pyloric stenosis shows "
         "multifactorial inheritance, with genetic and environmental contributions and a male "
         "predominance."),
        ("isolated cleft lip with or without cleft palate", "multifactorial",
         "Isolated cleft lip with or without cleft palate is a multifactorial trait influenced by several "
         "genes and the environment."),
        ("developmental dysplasia of the hip", "multifactorial",
         "Developmental dysplasia of the hip is multifactorial, with genetic susceptibility plus factors "
         "such as breech position."),
    ),
    "cytogenetics": (
        ("Down syndrome", "trisomy 21", "Most cases of Down syndrome result from meiotic nondisjunction "
         "producing trisomy 21."),
        ("Edwards syndrome", "trisomy 18", "Edwards syndrome is caused by trisomy 18 and presents with "
         "clenched hands with overlapping fingers and rocker-bottom feet."),
        ("Patau syndrome", "trisomy 13", "Patau syndrome is caused by trisomy 13 and presents with "
         "holoprosencephaly, cleft lip and palate, and polydactyly."),
        ("Turner syndrome", "45,X karyotype", "Turner syndrome results from loss of all or part of one X "
         "chromosome, classically a 45,X karyotype."),
        ("Klinefelter syndrome", "47,XXY karyotype", "Klinefelter syndrome is caused by an extra X "
         "chromosome in males (47,XXY) and causes hypogonadism with small testes."),
        ("cri-du-chat syndrome", "deletion of 5p", "Cri-du-chat syndrome results from a deletion of the "
         "short arm of chromosome 5."),
        ("Williams syndrome", "microdeletion at 7q11.23", "Williams syndrome is caused by a microdeletion "
         "at 7q11.23 that includes the elastin gene."),
        ("DiGeorge syndrome", "microdeletion at 22q11.2", "DiGeorge syndrome is caused by a 22q11.2 "
         "microdeletion that disturbs development of the third and fourth pharyngeal pouches."),
        ("chronic myeloid leukemia", "t(9;22) BCR-ABL1 fusion",
         "Chronic myeloid leukemia is defined by the Philadelphia chromosome, t(9;22), which creates the "
         "BCR-ABL1 fusion tyrosine kinase."),
        ("Burkitt lymphoma", "t(8;14) involving MYC", "Burkitt lymphoma typically carries t(8;14), which "
         "places MYC next to the immunoglobulin heavy chain locus."),
        ("follicular lymphoma", "t(14;18) involving BCL2", "Follicular lymphoma carries t(14;18), which "
         "places BCL2 under the immunoglobulin heavy chain promoter and blocks apoptosis."),
        ("acute promyelocytic leukemia", "t(15;17) PML-RARA fusion",
         "Acute promyelocytic leukemia is defined by t(15;17), which produces the PML-RARA fusion protein."),
        ("mantle cell lymphoma", "t(11;14) involving cyclin D1",
         "Mantle cell lymphoma carries t(11;14), which leads to overexpression of cyclin D1."),
        ("Ewing sarcoma", "t(11;22) EWSR1-FLI1 fusion", "Most Ewing sarcomas carry t(11;22), which "
         "creates the EWSR1-FLI1 fusion gene."),
    ),
    "autoantibody": (
        ("systemic lupus erythematosus", "anti-double-stranded DNA antibodies",
         "Anti-double-stranded DNA antibodies are highly specific for lupus and track with lupus "
         "nephritis activity."),
        ("drug-induced lupus", "anti-histone antibodies", "Anti-histone antibodies are present in most "
         "cases of drug-induced lupus, for example after hydralazine or procainamide."),
        ("limited cutaneous systemic sclerosis", "anti-centromere antibodies",
         "Anti-centromere antibodies are characteristic of limited cutaneous systemic sclerosis (CREST "
         "syndrome)."),
        ("diffuse cutaneous systemic sclerosis", "anti-topoisomerase I (anti-Scl-70) antibodies",
         "Anti-topoisomerase I (anti-Scl-70) antibodies are associated with diffuse cutaneous systemic "
         "sclerosis and interstitial lung disease."),
        ("polymyositis", "anti-Jo-1 antibodies", "Anti-Jo-1 (anti-histidyl-tRNA synthetase) antibodies "
         "are the classic myositis-specific antibodies of polymyositis and the antisynthetase syndrome."),
        ("rheumatoid arthritis", "anti-cyclic citrullinated peptide antibodies",
         "Anti-cyclic citrullinated peptide antibodies are highly specific for rheumatoid arthritis and "
         "predict erosive disease."),
        ("Graves disease", "TSH receptor-stimulating antibodies",
         "In Graves disease, IgG antibodies that stimulate the TSH receptor drive thyroid hormone "
         "overproduction and goiter."),
        ("Hashimoto thyroiditis", "anti-thyroid peroxidase antibodies",
         "Anti-thyroid peroxidase antibodies are present in most patients with Hashimoto thyroiditis."),
        ("primary biliary cholangitis", "antimitochondrial antibodies",
         "Antimitochondrial antibodies are found in about 95% of patients with primary biliary "
         "cholangitis."),
        ("celiac disease", "IgA anti-tissue transglutaminase antibodies",
         "IgA anti-tissue transglutaminase antibodies are the preferred serologic screening test for "
         "celiac disease."),
        ("Goodpasture syndrome", "anti-glomerular basement membrane antibodies",
         "Goodpasture syndrome is caused by antibodies against type IV collagen in glomerular and "
         "alveolar basement membranes."),
        ("granulomatosis with polyangiitis", "anti-proteinase 3 antibodies (c-ANCA)",
         "Granulomatosis with polyangiitis is most often associated with c-ANCA directed against "
         "proteinase 3."),
        ("microscopic polyangiitis", "anti-myeloperoxidase antibodies (p-ANCA)",
         "Microscopic polyangiitis is most often associated with p-ANCA directed against myeloperoxidase."),
        ("myasthenia gravis", "anti-acetylcholine receptor antibodies",
         "Most patients with generalized myasthenia gravis have antibodies against the nicotinic "
         "acetylcholine receptor."),
        ("Lambert-Eaton myasthenic syndrome", "anti-voltage-gated calcium channel antibodies",
         "Lambert-Eaton myasthenic syndrome is caused by antibodies against presynaptic P/Q-type "
         "voltage-gated calcium channels, often with small cell lung cancer."),
        ("pernicious anemia", "anti-intrinsic factor antibodies",
         "Anti-intrinsic factor antibodies are highly specific for pernicious anemia and block vitamin "
         "B12 absorption."),
        ("type 1 autoimmune hepatitis", "anti-smooth muscle antibodies",
         "Type 1 autoimmune hepatitis is characterized by antinuclear and anti-smooth muscle antibodies."),
        ("Sjögren syndrome", "anti-Ro/SSA and anti-La/SSB antibodies",
         "Anti-Ro/SSA and anti-La/SSB antibodies are the characteristic autoantibodies of Sjögren "
         "syndrome."),
        ("primary membranous nephropathy", "anti-phospholipase A2 receptor antibodies",
         "Most cases of primary membranous nephropathy are caused by antibodies against the podocyte "
         "phospholipase A2 receptor."),
        ("type 1 diabetes mellitus", "anti-glutamic acid decarboxylase antibodies",
         "Antibodies to glutamic acid decarboxylase (GAD65) mark autoimmune destruction of beta cells in "
         "type 1 diabetes."),
        ("pemphigus vulgaris", "anti-desmoglein 3 antibodies",
         "Pemphigus vulgaris is caused by autoantibodies against desmoglein 3, producing intraepidermal "
         "acantholysis."),
        ("bullous pemphigoid", "anti-hemidesmosome (BP180 and BP230) antibodies",
         "Bullous pemphigoid is caused by antibodies against the hemidesmosomal proteins BP180 and BP230, "
         "producing subepidermal blisters."),
        ("mixed connective tissue disease", "anti-U1 ribonucleoprotein antibodies",
         "High titers of anti-U1 ribonucleoprotein antibodies are required for the diagnosis of mixed "
         "connective tissue disease."),
    ),
}

# Objects of other facts that would also be defensible answers for a subject, so never its distractors.
EXCLUDED_DISTRACTORS: dict[tuple[str, str], frozenset[str]] = {
    (rel, subject): frozenset(objs)
    for rel, subject, objs in (
        ("first_line", "primary syphilis", ("oral doxycycline",)),
        ("first_line", "uncomplicated gonorrhea", ("oral doxycycline",)),
        ("first_line", "early localized Lyme disease", ("intramuscular ceftriaxone",)),
        ("first_line", "cryptococcal meningitis", ("oral fluconazole",)),
        ("first_line", "Candida esophagitis", ("amphotericin B plus flucytosine",)),
        ("first_line", "paroxysmal supraventricular tachycardia refractory to vagal maneuvers",
         ("propranolol",)),
        ("deficiency", "vitamin B12", ("hemolytic anemia", "fetal neural tube defects")),
        ("deficiency", "vitamin E", ("subacute combined degeneration of the spinal cord",)),
        ("deficiency", "pyridoxine (vitamin B6)", ("microcytic hypochromic anemia",)),
        ("adverse_effect", "amiodarone", ("peripheral neuropathy", "optic neuritis", "myopathy")),
        ("adverse_effect", "cisplatin", ("peripheral neuropathy",)),
        ("adverse_effect", "chloramphenicol", ("agranulocytosis", "optic neuritis")),
        ("adverse_effect", "phenytoin", ("Stevens-Johnson syndrome", "hypertrichosis", "drug-induced lupus",
                                         "peripheral neuropathy", "fetal neural tube defects")),
        ("adverse_effect", "clozapine", ("dilated cardiomyopathy", "aplastic anemia")),
        ("adverse_effect", "ethambutol", ("peripheral neuropathy",)),
        ("adverse_effect", "ciprofloxacin", ("peripheral neuropathy",)),
        ("adverse_effect", "vancomycin", ("nephrotoxicity and ototoxicity",)),
        ("adverse_effect", "digoxin", ("gynecomastia",)),
        ("adverse_effect", "methyldopa", ("drug-induced lupus",)),
        ("adverse_effect", "heparin", ("skin necrosis",)),
        ("adverse_effect", "valproate", ("Stevens-Johnson syndrome",)),
        ("antidote", "cyanide", ("100% oxygen",)),
        ("antidote", "dapsone", ("100% oxygen",)),
        ("antidote", "beta-blocker", ("sodium bicarbonate",)),
        ("antidote", "methanol", ("sodium bicarbonate", "leucovorin")),
        ("antidote", "ethylene glycol", ("sodium bicarbonate", "pyridoxine")),
        ("nerve_muscle", "deep branch of the ulnar nerve", ("thenar muscles",)),
        ("nerve_muscle", "femoral nerve", ("thigh adductors",)),
        ("nerve_muscle", "tibial nerve", ("thigh adductors",)),
        ("hallmark_finding", "Wilson disease", ("Mallory-Denk bodies",)),
        ("hallmark_finding", "Whipple disease", ("villous atrophy with crypt hyperplasia",)),
        ("hallmark_finding", "Alzheimer disease", ("Lewy bodies",)),
        ("hallmark_finding", "Parkinson disease", ("neurofibrillary tangles and amyloid plaques",)),
        ("autoantibody", "systemic lupus erythematosus", ("anti-histone antibodies",
                                                          "anti-Ro/SSA and anti-La/SSB antibodies",
                                                          "anti-U1 ribonucleoprotein antibodies")),
        ("autoantibody", "Graves disease", ("anti-thyroid peroxidase antibodies",)),
        ("autoantibody", "Hashimoto thyroiditis", ("TSH receptor-stimulating antibodies",)),
        ("autoantibody", "primary biliary cholangitis", ("anti-centromere antibodies",)),
        ("autoantibody", "type 1 autoimmune hepatitis", ("antimitochondrial antibodies",)),
    )
}

FACTS: tuple[Fact, ...] = tuple(
    Fact(relation, subject, obj, explanation)
    for relation, rows in _TABLES.items()
    for subject, obj, explanation in rows
)


def relations() -> tuple[str, ...]:
    """The relation names, in table order."""
    return tuple(_TABLES)


def spec(relation: str) -> RelationSpec:
    """The question templates of `relation`."""
    return RELATIONS[relation]


@cache
def facts_for(relation: str) -> tuple[Fact, ...]:
    """The facts of one relation, in table order."""
    return tuple(f for f in FACTS if f.relation == relation)


@cache
def objects_for(relation: str) -> tuple[str, ...]:
    """The distinct objects of one relation, in first-seen order."""
    return tuple(dict.fromkeys(f.obj for f in facts_for(relation)))


@cache
def distractor_pool(fact: Fact) -> tuple[str, ...]:
    """Every object of `fact`'s relation that is a safe wrong answer for its subject."""
    excluded = EXCLUDED_DISTRACTORS.get((fact.relation, fact.subject), frozenset())
    return tuple(o for o in objects_for(fact.relation) if o != fact.obj and o not in excluded)


def distractors(fact: Fact, k: int, rng: random.Random) -> list[str]:
    """`k` distinct wrong options for `fact`, in random order."""
    pool = distractor_pool(fact)
    if k > len(pool):
        raise ValueError(f"{fact.relation}/{fact.subject}: only {len(pool)} distractors, {k} requested")
    return rng.sample(pool, k)


@cache
def fact_with_object(relation: str, obj: str) -> Fact:
    """The first fact of `relation` whose object is `obj` (used to explain why a distractor is wrong)."""
    return next(f for f in facts_for(relation) if f.obj == obj)


@cache
def related_facts(fact: Fact) -> tuple[Fact, ...]:
    """Facts of other relations about the same subject, or whose subject is this fact's object."""
    keys = {fact.subject.lower(), fact.obj.lower()}
    return tuple(f for f in FACTS if f != fact and f.subject.lower() in keys and f.relation != fact.relation)


def cap(text: str) -> str:
    """Capitalise the first character only ("vitamin C" -> "Vitamin C")."""
    return text[:1].upper() + text[1:]


def claim(fact: Fact, obj: str | None = None, capitalize: bool = True) -> str:
    """The fact as a sentence without its final period; `obj` substitutes another object (a false claim)."""
    text = RELATIONS[fact.relation].claim.format(subject=fact.subject, obj=fact.obj if obj is None else obj)
    return cap(text) if capitalize else text


def render(template: str, fact: Fact, rng: random.Random, obj: str | None = None) -> str:
    """Fill a question template for `fact`; a patient is drawn only when the template mentions one."""
    patient = patient_phrase(fact.subject, fact.relation, rng) if "atient}" in template else ""
    return template.format(
        subject=fact.subject,
        Subject=cap(fact.subject),
        obj=fact.obj if obj is None else obj,
        patient=patient,
        Patient=cap(patient),
    )
