//! Recognising the header cells of a spreadsheet as schema columns, the way a payroll clerk
//! reads them: case, accents, punctuation and filler words do not count, abbreviations and
//! synonyms mean the same (`n°`/`nr`/`numéro`, `NISS`/`INSZ`/`numéro national`), Dutch compounds
//! are read as their parts (`brutoloon` = `bruto loon`), and the order of the words does not
//! matter ("Bruto loon voltijds" = "Voltijds brutoloon").
//!
//! A header becomes a set of *meanings* through the vocabulary (`schemas/vocabulary.toml`).
//! A column is recognised when the header holds every meaning of one of the column's word sets
//! (one per alias of the schema, plus its `words`) and nothing but those, the column's
//! `extra_words` and its choices (for "Sexe (M/F)"). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The vocabulary built into the binary.
const EMBEDDED_VOCABULARY: &str = include_str!("../../schemas/vocabulary.toml");

/// Shortest word that is tried as a compound.
const MIN_COMPOUND_CHARACTERS: usize = 6;
/// Longest word that is tried as a compound: splitting costs the square of the length, and
/// no header word is longer (Dutch compounds of the schemas stay under 30).
const MAX_COMPOUND_CHARACTERS: usize = 48;
/// A cell longer than this is no header: it is not read at all (a hostile file may fill its
/// first rows with 32 767-character cells).
pub const MAX_HEADER_CHARACTERS: usize = 200;

/// How close an unknown header must come to a missing column to be proposed for it.
pub const SUGGESTION_THRESHOLD: f64 = 0.5;

/// Lower case, accents removed, compatibility forms unfolded (`º` → `o`), anything but letters
/// and digits as single spaces: the form headers and choices are compared in.
pub fn normalise(text: &str) -> String {
    // Most cells are plain ASCII, which decomposition leaves as it is: every cell of a file is
    // normalised once, so the Unicode pass is kept for the text that needs it.
    let stripped: String = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.nfkd().filter(|c| !is_combining_mark(*c)).collect::<String>().to_lowercase()
    };
    let mut out = String::with_capacity(stripped.len());
    for c in stripped.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

/// The text with its accents removed, nothing else changed (`Employés` → `Employes`).
pub fn without_accents(text: &str) -> String {
    text.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum VocabularyError {
    #[error("schemas/vocabulary.toml: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("schemas/vocabulary.toml: the phrase \"{phrase}\" is given two meanings: {first} and {second}")]
    TwoMeanings { phrase: String, first: String, second: String },
    #[error("schemas/vocabulary.toml: \"{phrase}\" is made of ignored words only")]
    OnlyIgnoredWords { phrase: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVocabulary {
    ignore: Vec<String>,
    meanings: BTreeMap<String, Vec<String>>,
}

/// Words and phrases with their meanings, and the words that do not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    ignore: HashSet<String>,
    /// Folded phrases (after the ignored words are dropped) → their meanings.
    phrases: HashMap<Vec<String>, Vec<String>>,
    longest_phrase: usize,
    /// Single words a compound may be split into.
    pieces: HashSet<String>,
    /// Every meaning's name.
    meanings: BTreeSet<String>,
}

static VOCABULARY: LazyLock<Result<Arc<Vocabulary>, VocabularyError>> =
    LazyLock::new(|| Vocabulary::parse(EMBEDDED_VOCABULARY).map(Arc::new));

impl Vocabulary {
    /// The vocabulary built into the binary.
    pub fn embedded() -> Result<Arc<Vocabulary>, &'static VocabularyError> {
        VOCABULARY.as_ref().map(Arc::clone)
    }

    pub fn parse(text: &str) -> Result<Self, VocabularyError> {
        let raw: RawVocabulary = toml::from_str(text)?;
        let ignore: HashSet<String> = raw.ignore.iter().map(|w| normalise(w)).collect();
        let mut phrases: HashMap<Vec<String>, Vec<String>> = HashMap::new();
        let mut meanings = BTreeSet::new();
        for (name, surfaces) in &raw.meanings {
            let names: Vec<String> = name.split_whitespace().map(str::to_string).collect();
            meanings.extend(names.iter().cloned());
            for surface in surfaces {
                let words: Vec<String> = normalise(surface)
                    .split(' ')
                    .filter(|w| !w.is_empty() && !ignore.contains(*w))
                    .map(str::to_string)
                    .collect();
                if words.is_empty() {
                    return Err(VocabularyError::OnlyIgnoredWords { phrase: surface.clone() });
                }
                if let Some(first) = phrases.get(&words) {
                    if first != &names {
                        return Err(VocabularyError::TwoMeanings {
                            phrase: surface.clone(),
                            first: first.join(" "),
                            second: name.clone(),
                        });
                    }
                }
                phrases.insert(words, names.clone());
            }
        }
        let longest_phrase = phrases.keys().map(Vec::len).max().unwrap_or(1);
        let pieces = phrases
            .keys()
            .filter(|words| words.len() == 1 && words[0].chars().count() >= 2)
            .map(|words| words[0].clone())
            .collect();
        Ok(Self { ignore, phrases, longest_phrase, pieces, meanings })
    }

    pub fn knows_meaning(&self, name: &str) -> bool {
        self.meanings.contains(name)
    }

    /// The meanings of a header: its words, compounds split, phrases and synonyms replaced by
    /// what they mean, ignored words dropped. Unknown words mean themselves.
    pub fn meanings(&self, header: &str) -> BTreeSet<String> {
        let folded = normalise(header);
        let mut words: Vec<String> = Vec::new();
        for word in folded.split(' ').filter(|w| !w.is_empty()) {
            if self.ignore.contains(word) {
                continue;
            }
            if self.phrases.contains_key([word.to_string()].as_slice()) {
                words.push(word.to_string());
            } else if let Some(parts) = self.split_compound(word) {
                words.extend(parts);
            } else {
                words.push(word.to_string());
            }
        }
        let mut meanings = BTreeSet::new();
        let mut at = 0;
        while at < words.len() {
            let longest = self.longest_phrase.min(words.len() - at);
            let found = (1..=longest).rev().find_map(|len| self.phrases.get(&words[at..at + len]).map(|m| (len, m)));
            match found {
                Some((len, names)) => {
                    meanings.extend(names.iter().cloned());
                    at += len;
                }
                None => {
                    meanings.insert(words[at].clone());
                    at += 1;
                }
            }
        }
        meanings
    }

    /// Splits a Dutch compound into known words, with the linking `s` between two of them
    /// (`indiensttredingsdatum` → `indiensttreding`, `datum`). `None` unless the whole word
    /// is made of at least two known words.
    fn split_compound(&self, word: &str) -> Option<Vec<String>> {
        let bounds: Vec<usize> = word.char_indices().map(|(i, _)| i).chain([word.len()]).collect();
        let n = bounds.len() - 1;
        if !(MIN_COMPOUND_CHARACTERS..=MAX_COMPOUND_CHARACTERS).contains(&n) {
            return None;
        }
        // Fewest pieces to read word[..j]: ending on a piece, or on a linking `s`.
        #[derive(Clone, Copy)]
        struct Step {
            pieces: usize,
            from: usize,
        }
        let mut on_piece: Vec<Option<Step>> = vec![None; n + 1];
        let mut on_link: Vec<Option<Step>> = vec![None; n + 1];
        let better = |slot: &Option<Step>, pieces: usize| slot.is_none_or(|s| pieces < s.pieces);
        for j in 1..=n {
            for i in 0..j {
                let part = &word[bounds[i]..bounds[j]];
                let before = if i == 0 {
                    Some(0)
                } else {
                    match (on_piece[i], on_link[i]) {
                        (Some(p), Some(l)) => Some(p.pieces.min(l.pieces)),
                        (Some(p), None) => Some(p.pieces),
                        (None, Some(l)) => Some(l.pieces),
                        (None, None) => None,
                    }
                };
                if let Some(before) = before {
                    if self.pieces.contains(part) && better(&on_piece[j], before + 1) {
                        on_piece[j] = Some(Step { pieces: before + 1, from: i });
                    }
                }
                if part == "s" && i > 0 {
                    if let Some(p) = on_piece[i] {
                        if better(&on_link[j], p.pieces) {
                            on_link[j] = Some(Step { pieces: p.pieces, from: i });
                        }
                    }
                }
            }
        }
        let last = on_piece[n]?;
        if last.pieces < 2 {
            return None;
        }
        // Walk back: a piece came after a piece, a link, or the start; a link after a piece.
        let mut parts = Vec::new();
        let mut j = n;
        let mut step = last;
        loop {
            parts.push(word[bounds[step.from]..bounds[j]].to_string());
            j = step.from;
            if j == 0 {
                break;
            }
            let via_piece = on_piece[j].filter(|p| p.pieces + 1 == step.pieces);
            step = match via_piece {
                Some(p) => p,
                None => {
                    let link = on_link[j]?;
                    j = link.from;
                    on_piece[j]?
                }
            };
        }
        parts.reverse();
        Some(parts)
    }
}

/// What a schema says about one column's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnWords {
    pub key: String,
    /// The key and the aliases, as written in the schema.
    pub aliases: Vec<String>,
    /// Further sets of meanings that name the column, each a space-separated list.
    pub words: Vec<String>,
    /// Meanings a header may add without naming another column ("brut", "employeur").
    pub extra_words: Vec<String>,
    /// The column's choices and their aliases, for headers such as "Sexe (M/F)".
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderConflict {
    #[error("column {column}: \"{word}\" is not a meaning of schemas/vocabulary.toml")]
    UnknownMeaning { column: String, word: String },
    #[error("column {column}: the header \"{alias}\" is read as column {other}")]
    ReadAsOther { column: String, alias: String, other: String },
    #[error("column {column}: the header \"{alias}\" could be {columns}")]
    Ambiguous { column: String, alias: String, columns: String },
}

/// How a header cell was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognition {
    /// The index of the column it names.
    Column(usize),
    /// It could name any of these columns.
    Ambiguous(Vec<usize>),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Recognisable {
    key: String,
    exact: Vec<String>,
    alternatives: Vec<BTreeSet<String>>,
    allowed_extra: BTreeSet<String>,
    choices: BTreeSet<String>,
}

/// The columns of one schema, ready to recognise headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatcher {
    vocabulary: Arc<Vocabulary>,
    columns: Vec<Recognisable>,
}

impl HeaderMatcher {
    /// Checks that every alias is read as its own column, and nothing else.
    pub fn new(vocabulary: Arc<Vocabulary>, columns: &[ColumnWords]) -> Result<Self, HeaderConflict> {
        let mut recognisable = Vec::new();
        for column in columns {
            let named = |word: &str| -> Result<String, HeaderConflict> {
                if vocabulary.knows_meaning(word) {
                    Ok(word.to_string())
                } else {
                    Err(HeaderConflict::UnknownMeaning { column: column.key.clone(), word: word.to_string() })
                }
            };
            let mut alternatives: Vec<BTreeSet<String>> =
                column.aliases.iter().map(|a| vocabulary.meanings(a)).filter(|m| !m.is_empty()).collect();
            for set in &column.words {
                alternatives.push(set.split_whitespace().map(named).collect::<Result<_, _>>()?);
            }
            let allowed_extra = column.extra_words.iter().map(|w| named(w)).collect::<Result<_, _>>()?;
            let choices = column.choices.iter().flat_map(|c| vocabulary.meanings(c)).collect();
            recognisable.push(Recognisable {
                key: column.key.clone(),
                exact: column.aliases.iter().map(|a| normalise(a)).collect(),
                alternatives,
                allowed_extra,
                choices,
            });
        }
        let matcher = Self { vocabulary, columns: recognisable };
        for (index, column) in columns.iter().enumerate() {
            for alias in &column.aliases {
                let folded = normalise(alias);
                let conflict = |other: &str| HeaderConflict::ReadAsOther {
                    column: column.key.clone(),
                    alias: alias.clone(),
                    other: other.to_string(),
                };
                if let Some(other) = matcher.columns.iter().find(|c| c.key != column.key && c.exact.contains(&folded)) {
                    return Err(conflict(&other.key));
                }
                // Read by its words alone, an alias must still name its own column.
                match matcher.recognise_by_words(alias) {
                    Recognition::Column(found) if found == index => {}
                    Recognition::Unknown => {}
                    Recognition::Column(found) => return Err(conflict(matcher.key(found))),
                    Recognition::Ambiguous(found) => {
                        return Err(HeaderConflict::Ambiguous {
                            column: column.key.clone(),
                            alias: alias.clone(),
                            columns: found.iter().map(|&i| matcher.key(i)).collect::<Vec<_>>().join(", "),
                        })
                    }
                }
            }
        }
        Ok(matcher)
    }

    pub fn key(&self, column: usize) -> &str {
        &self.columns[column].key
    }

    pub fn recognise(&self, header: &str) -> Recognition {
        if header.chars().nth(MAX_HEADER_CHARACTERS).is_some() {
            return Recognition::Unknown;
        }
        let folded = normalise(header);
        if folded.is_empty() {
            return Recognition::Unknown;
        }
        // The schema's own spelling first: checked at load never to name two columns.
        if let Some(index) = self.columns.iter().position(|c| c.exact.contains(&folded)) {
            return Recognition::Column(index);
        }
        self.recognise_by_words(header)
    }

    fn recognise_by_words(&self, header: &str) -> Recognition {
        let meanings = self.vocabulary.meanings(header);
        if meanings.is_empty() {
            return Recognition::Unknown;
        }
        // Each candidate with how many meanings its best word set names: the most specific wins.
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for (index, column) in self.columns.iter().enumerate() {
            let allowed = |m: &String, set: &BTreeSet<String>| {
                set.contains(m) || column.allowed_extra.contains(m) || column.choices.contains(m)
            };
            let by_words = column
                .alternatives
                .iter()
                .filter(|set| set.is_subset(&meanings) && meanings.iter().all(|m| allowed(m, set)))
                .map(BTreeSet::len)
                .max();
            // "Ouvrier/Employé", "M/F": a header made of the column's choices only.
            let by_choices = (meanings.len() >= 2 && meanings.is_subset(&column.choices)).then_some(0);
            if let Some(specificity) = by_words.or(by_choices) {
                candidates.push((index, specificity));
            }
        }
        let Some(best) = candidates.iter().map(|(_, s)| *s).max() else {
            return Recognition::Unknown;
        };
        let winners: Vec<usize> = candidates.into_iter().filter(|(_, s)| *s == best).map(|(i, _)| i).collect();
        if winners.len() == 1 {
            Recognition::Column(winners[0])
        } else {
            Recognition::Ambiguous(winners)
        }
    }

    /// How close a header comes to a column, from 0 to 1: shared meanings, or shared letters
    /// for a misspelt header ("Date de naisance").
    pub fn closeness(&self, column: usize, header: &str) -> f64 {
        if header.chars().nth(MAX_HEADER_CHARACTERS).is_some() {
            return 0.0;
        }
        let column = &self.columns[column];
        let meanings = self.vocabulary.meanings(header);
        let folded = normalise(header);
        let by_meaning = column.alternatives.iter().map(|set| jaccard(&meanings, set)).fold(0.0, f64::max);
        let by_letters = column.exact.iter().map(|alias| trigram_similarity(&folded, alias)).fold(0.0, f64::max);
        by_meaning.max(by_letters)
    }
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Dice coefficient of the letter trigrams of two folded texts.
fn trigram_similarity(a: &str, b: &str) -> f64 {
    let grams = |text: &str| -> Vec<[char; 3]> {
        let chars: Vec<char> = format!("  {text} ").chars().collect();
        chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
    };
    let (a, b) = (grams(a), grams(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut remaining = b.clone();
    let mut shared = 0;
    for gram in &a {
        if let Some(position) = remaining.iter().position(|g| g == gram) {
            remaining.swap_remove(position);
            shared += 1;
        }
    }
    2.0 * shared as f64 / (a.len() + b.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_text_is_normalised_as_the_unicode_pass_would() {
        for text in ["N° de contrat", "  NISS / INSZ ", "Date_of-BIRTH", "Taux d'occupation (%)", "a  b", ""] {
            let slow: String = text.nfkd().filter(|c| !is_combining_mark(*c)).collect::<String>().to_lowercase();
            let folded: String = slow
                .split(|c: char| !c.is_alphanumeric())
                .filter(|word| !word.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(normalise(text), folded, "{text:?}");
        }
        assert_eq!(normalise("NISS-Nummer"), "niss nummer");
    }

    fn vocabulary() -> Arc<Vocabulary> {
        Vocabulary::embedded().unwrap()
    }

    fn set(words: &[&str]) -> BTreeSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn folding_drops_case_accents_punctuation_and_compatibility_forms() {
        assert_eq!(normalise("  N° d'Entrée "), "n d entree");
        assert_eq!(normalise("Nº contrat"), "no contrat");
        assert_eq!(normalise("PÉRIODICITÉ—du  salaire"), "periodicite du salaire");
    }

    #[test]
    fn dutch_compounds_are_read_as_their_parts() {
        let v = vocabulary();
        assert_eq!(v.meanings("Brutoloon"), set(&["gross", "salary"]));
        assert_eq!(v.meanings("Indiensttredingsdatum"), set(&["hire", "date"]));
        assert_eq!(v.meanings("Datum indiensttreding"), set(&["hire", "date"]));
        assert_eq!(v.meanings("Ondernemingsnr"), set(&["enterprise", "number"]));
        assert_eq!(v.meanings("Tewerkstellingsbreuk"), set(&["occupation", "rate"]));
        // A word that is not made of known words is left whole.
        assert_eq!(v.meanings("Opmerkingen"), set(&["opmerkingen"]));
    }

    #[test]
    fn phrases_and_abbreviations_mean_the_same() {
        let v = vocabulary();
        assert_eq!(v.meanings("Numéro national"), v.meanings("INSZ"));
        assert_eq!(v.meanings("N° de contrat"), v.meanings("Contract nr."));
        assert_eq!(v.meanings("Bruto loon voltijds"), v.meanings("Voltijds brutoloon"));
        assert_eq!(v.meanings("Date de naissance (JJ/MM/AAAA)"), set(&["birth", "date"]));
    }

    #[test]
    fn a_broken_vocabulary_is_refused_naming_the_phrase() {
        let text = "ignore = [\"de\"]\n[meanings]\nsalary = [\"loon\"]\nrate = [\"loon\"]\n";
        let message = Vocabulary::parse(text).unwrap_err().to_string();
        assert!(message.contains("loon") && message.contains("salary") && message.contains("rate"), "{message}");
        let text = "ignore = [\"de\"]\n[meanings]\nsalary = [\"de\"]\n";
        assert!(Vocabulary::parse(text).unwrap_err().to_string().contains("ignored"));
    }

    fn columns() -> Vec<ColumnWords> {
        let column = |key: &str, aliases: &[&str], words: &[&str], extra: &[&str]| ColumnWords {
            key: key.into(),
            aliases: std::iter::once(key).chain(aliases.iter().copied()).map(str::to_string).collect(),
            words: words.iter().map(|w| w.to_string()).collect(),
            extra_words: extra.iter().map(|w| w.to_string()).collect(),
            choices: Vec::new(),
        };
        vec![
            column("hire_date", &["Date d'entrée"], &["hire"], &["date"]),
            column("birth_date", &["Date de naissance"], &["birth"], &["date"]),
        ]
    }

    #[test]
    fn the_most_specific_column_wins_and_a_tie_is_ambiguous() {
        let matcher = HeaderMatcher::new(vocabulary(), &columns()).unwrap();
        assert_eq!(matcher.recognise("Datum in dienst"), Recognition::Column(0));
        assert_eq!(matcher.recognise("geboortedatum"), Recognition::Column(1));
        assert_eq!(matcher.recognise("Date"), Recognition::Unknown);
        assert_eq!(matcher.recognise("Date de naissance et d'entrée"), Recognition::Unknown);
        let mut both = columns();
        both[1].extra_words.push("hire".into());
        both[0].extra_words.push("birth".into());
        let matcher = HeaderMatcher::new(vocabulary(), &both).unwrap();
        assert_eq!(matcher.recognise("Naissance entrée"), Recognition::Ambiguous(vec![0, 1]));
    }

    #[test]
    fn an_alias_read_as_another_column_is_a_schema_error() {
        let mut wrong = columns();
        wrong[0].aliases.push("Geboortedatum".into());
        let error = HeaderMatcher::new(vocabulary(), &wrong).unwrap_err();
        assert!(
            matches!(&error, HeaderConflict::Ambiguous { columns, .. } if columns.contains("birth_date")),
            "{error}"
        );
        let mut taken = columns();
        taken[0].aliases.push("date de naissance".into());
        let error = HeaderMatcher::new(vocabulary(), &taken).unwrap_err();
        assert!(matches!(&error, HeaderConflict::ReadAsOther { other, .. } if other == "birth_date"), "{error}");
        let mut typo = columns();
        typo[0].extra_words.push("dat".into());
        assert!(matches!(HeaderMatcher::new(vocabulary(), &typo).unwrap_err(), HeaderConflict::UnknownMeaning { .. }));
    }

    #[test]
    fn long_cells_are_not_read_as_headers_and_long_words_are_not_split() {
        let matcher = HeaderMatcher::new(vocabulary(), &columns()).unwrap();
        let word = "a".repeat(32_767);
        assert_eq!(matcher.recognise(&word), Recognition::Unknown);
        assert_eq!(matcher.closeness(0, &word), 0.0);
        // A word longer than any compound of the schemas is not split (splitting is quadratic).
        let long = "datum".repeat(39);
        assert_eq!(vocabulary().meanings(&long), set(&[long.as_str()]));
        assert_eq!(vocabulary().meanings("geboortedatum"), set(&["birth", "date"]));
    }

    #[test]
    fn misspelt_headers_come_close() {
        let matcher = HeaderMatcher::new(vocabulary(), &columns()).unwrap();
        assert!(matcher.closeness(1, "Date de naisance") > SUGGESTION_THRESHOLD);
        assert!(matcher.closeness(1, "Remarques") < SUGGESTION_THRESHOLD);
    }
}
