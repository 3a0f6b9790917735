//! Headers as payroll bureaus really write them, in French, Dutch and English, and the column
//! each one must be read as. Each variant here was seen in, or modelled on, payroll exports and
//! insurers' forms; none is a schema alias spelt differently only in case.

use super::headers::Recognition;
use super::schema::Schemas;

/// Shared by the affiliations and exits kinds.
const PERSON_AND_CONTRACT: &[(&str, &[&str])] = &[
    (
        "contract_number",
        &[
            "N° contrat",
            "Num. contrat",
            "Contrat n°",
            "Numéro du contrat",
            "Nº de police",
            "Contract nr.",
            "Polisnummer",
            "Nr. contract",
            "Contract No",
            "Policy number",
            "N° contrat assurance groupe",
            "Groepsverzekering contractnummer",
        ],
    ),
    (
        "employer_kbo",
        &[
            "N° BCE",
            "Numéro BCE de l'employeur",
            "N° d'entreprise employeur",
            "KBO-nummer",
            "Ondernemingsnr.",
            "KBO nr werkgever",
            "Ondernemingsnummer werkgever",
            "BTW-nummer",
            "Company number",
            "CBE number",
            "Employer enterprise number",
        ],
    ),
    (
        "niss",
        &[
            "N° national",
            "N° NISS",
            "Numéro NISS du travailleur",
            "N° de registre national",
            "Numéro d'identification de la sécurité sociale",
            "INSZ-nummer",
            "Rijksregisternr.",
            "Rijksregister nummer",
            "Identificatienummer van de sociale zekerheid",
            "National register number",
            "Social security number",
            "SSIN",
        ],
    ),
    (
        "last_name",
        &[
            "NOM",
            "Nom de famille",
            "Nom du travailleur",
            "Nom de l'affilié",
            "Achternaam",
            "Naam werknemer",
            "Familienaam aangeslotene",
            "Last name",
            "Lastname",
            "Surname",
            "Family name",
        ],
    ),
    (
        "first_name",
        &[
            "PRENOM",
            "Prénoms",
            "Prénom du travailleur",
            "Prénom de l'affilié",
            "Voornaam werknemer",
            "Voornamen",
            "Prénom(s)",
            "Roepnaam",
            "First name",
            "Firstname",
            "Given name",
            "Forename",
        ],
    ),
];

const AFFILIATIONS: &[(&str, &[&str])] = &[
    (
        "birth_date",
        &[
            "Date naissance",
            "Date de naissance (JJ/MM/AAAA)",
            "Né(e) le",
            "Date de naiss.",
            "Naissance",
            "Geboren op",
            "Datum van geboorte",
            "Geb. datum",
            "Geboortedatum (dd/mm/jjjj)",
            "Date of birth",
            "Birthdate",
            "DOB",
        ],
    ),
    (
        "gender",
        &[
            "Sexe (M/F)",
            "Sexe H/F",
            "SEXE",
            "Genre (H/F/X)",
            "Geslacht (M/V)",
            "Geslacht M/V/X",
            "GESLACHT",
            "Sex",
            "Gender (M/F/X)",
            "M/F",
            "M/V",
        ],
    ),
    (
        "language",
        &[
            "Langue du travailleur",
            "Langue de correspondance",
            "Langue (FR/NL)",
            "LANGUE",
            "Taal werknemer",
            "Correspondentietaal",
            "Taal (NL/FR)",
            "Voertaal",
            "Régime linguistique",
            "Taalrol",
            "Language of correspondence",
            "Correspondence language",
            "Lang.",
        ],
    ),
    (
        "hire_date",
        &[
            "Date d'entrée en service",
            "Date entrée service",
            "Entrée en service",
            "Date d'engagement",
            "Date d'embauche",
            "Datum indiensttreding",
            "Datum van indiensttreding",
            "In dienst sinds",
            "Datum aanwerving",
            "Indienstdatum",
            "Hire date",
            "Date of hire",
            "Hiring date",
        ],
    ),
    (
        "affiliation_date",
        &[
            "Date affiliation",
            "Date de début d'affiliation",
            "Date d'adhésion",
            "Date d'affiliation au plan",
            "Datum aansluiting",
            "Datum van aansluiting",
            "Aansluitingsdatum pensioenplan",
            "Startdatum aansluiting",
            "Affiliation date",
            "Date of affiliation",
            "Enrolment date",
        ],
    ),
    (
        "category",
        &[
            "Catégorie du personnel",
            "Catégorie d'affiliation",
            "Code catégorie",
            "Cat.",
            "CATEGORIE",
            "Categorie werknemer",
            "Personeelscategorie (code)",
            "Pensioencategorie",
            "Category",
            "Staff category",
            "Employee category",
        ],
    ),
    (
        "worker_status",
        &[
            "Statut (employé/ouvrier)",
            "Statut travailleur",
            "Statut social",
            "Type de travailleur",
            "Ouvrier/Employé",
            "Statuut werknemer",
            "Statuut (bediende/arbeider)",
            "Soort werknemer",
            "Arbeider/Bediende",
            "Status",
            "Worker status",
            "Employee status",
        ],
    ),
    (
        "occupation_rate",
        &[
            "Taux d'occupation (%)",
            "Pourcentage d'occupation",
            "Régime de travail (%)",
            "Taux temps partiel",
            "Temps de travail",
            "Taux ETP",
            "Tewerkstellingspercentage",
            "Tewerkstellingsgraad",
            "Werkregime",
            "Deeltijdse breuk",
            "Occupation rate",
            "FTE %",
            "Working time percentage",
        ],
    ),
    (
        "salary_fte",
        &[
            "Salaire brut temps plein",
            "Salaire temps plein (EUR)",
            "Rémunération temps plein",
            "Salaire ETP",
            "Salaire mensuel brut temps plein",
            "Bruto loon voltijds",
            "Voltijds brutoloon",
            "Brutoloon voltijds",
            "Loon VTE",
            "Voltijdse bezoldiging",
            "Full-time salary",
            "Gross FTE salary",
            "FTE salary",
        ],
    ),
    (
        "salary_frequency",
        &[
            "Périodicité du salaire",
            "Fréquence de paiement",
            "Périodicité salaire",
            "Mensuel/Annuel",
            "Frequentie loon",
            "Frequentie van het loon",
            "Betalingsfrequentie",
            "Periodiciteit loon",
            "Salary frequency",
            "Pay frequency",
            "Payment frequency",
        ],
    ),
    (
        "employer_reference",
        &[
            "Référence",
            "Référence interne",
            "N° de matricule",
            "Matricule interne",
            "Numéro du travailleur",
            "Referentie",
            "Stamnummer",
            "Werknemersnummer",
            "Personeelsnr.",
            "Employee ID",
            "Staff number",
            "Employer reference",
        ],
    ),
];

const EXITS: &[(&str, &[&str])] = &[
    (
        "exit_date",
        &[
            "Date sortie",
            "Date de sortie de service",
            "Date de départ",
            "Date de fin de contrat",
            "Date fin",
            "Datum uitdiensttreding",
            "Uitdiensttredingsdatum",
            "Einddatum",
            "Vertrekdatum",
            "Datum einde contract",
            "Exit date",
            "Leaving date",
            "Termination date",
        ],
    ),
    (
        "exit_reason",
        &[
            "Motif",
            "Motif du départ",
            "Raison de la sortie",
            "Cause de sortie",
            "Motif de fin de contrat",
            "Reden",
            "Uittredingsreden",
            "Reden vertrek",
            "Reden uit dienst",
            "Reason for leaving",
            "Exit reason",
        ],
    ),
    (
        "date_of_death",
        &[
            "Date du décès",
            "Décédé le",
            "Décès le",
            "Date décès",
            "Datum overlijden",
            "Datum van overlijden",
            "Overleden op",
            "Sterfdatum",
            "Date of death",
            "Death date",
            "DOD",
        ],
    ),
];

fn read_as(kind: &str, header: &str) -> Option<String> {
    let schemas = Schemas::embedded().unwrap();
    let schema = schemas.for_kind(kind).unwrap();
    match schema.headers.recognise(header) {
        Recognition::Column(index) => Some(schema.columns[index].key.clone()),
        Recognition::Ambiguous(_) | Recognition::Unknown => None,
    }
}

fn check(kind: &str, table: &[(&str, &[&str])]) {
    let mut wrong = Vec::new();
    for (column, variants) in table {
        assert!(variants.len() >= 10, "{column}: at least ten variants");
        for variant in *variants {
            let found = read_as(kind, variant);
            if found.as_deref() != Some(*column) {
                wrong.push(format!("{kind}: \"{variant}\" read as {found:?}, expected {column}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn affiliations_headers_are_read_as_a_clerk_reads_them() {
    check("affiliations", PERSON_AND_CONTRACT);
    check("affiliations", AFFILIATIONS);
}

#[test]
fn exits_headers_are_read_as_a_clerk_reads_them() {
    check("exits", PERSON_AND_CONTRACT);
    check("exits", EXITS);
}

#[test]
fn headers_of_other_things_are_not_taken_for_columns() {
    for header in [
        "Date",
        "Remarques",
        "Opmerkingen",
        "Nom et prénom",
        "Adresse",
        "Numéro",
        "Salaire",
        "Commentaire",
        "Date de naissance et d'entrée",
        "Total",
    ] {
        assert_eq!(read_as("affiliations", header), None, "{header}");
    }
    // In exits, a start date names no column.
    assert_eq!(read_as("exits", "Date d'entrée"), None);
}
