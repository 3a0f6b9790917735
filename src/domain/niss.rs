use std::fmt;

use super::{digits_without_separators, mod97_check, InvalidIdentifier};

/// A Belgian national number (NISS/INSZ), national register or BIS: `YYMMDDSSSCC`.
///
/// The check is `97 - (YYMMDDSSS mod 97)`, computed on `2YYMMDDSSS` for births from 2000 on;
/// whichever rule matches gives the century. `Debug` and `Display` are masked: the full number
/// is only available through [`Niss::reveal`], for the registry and the owner's own reports.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Niss {
    digits: String,
    born_after_1999: bool,
}

impl Niss {
    /// Accepts `85.07.30-033.28`, `85073003328`, and the 10-digit form an Excel number cell
    /// leaves after stripping a leading zero.
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let err = |why: &str| InvalidIdentifier::new("national number", why);
        let mut digits = digits_without_separators(input.trim())
            .ok_or_else(|| err("only digits, dots, dashes and spaces are allowed"))?;
        if digits.len() == 10 {
            digits.insert(0, '0');
        }
        if digits.len() != 11 {
            return Err(err("must have 11 digits (YY.MM.DD-SSS.CC)"));
        }
        let (body, check) = digits.split_at(9);
        let body: u64 = body.parse().map_err(|_| err("not a number"))?;
        let check: u64 = check.parse().map_err(|_| err("not a number"))?;
        let born_after_1999 = if mod97_check(body) == check {
            false
        } else if mod97_check(2_000_000_000 + body) == check {
            true
        } else {
            return Err(err("check digits do not match: verify the number"));
        };
        let niss = Self { digits, born_after_1999 };
        let (month, day) = niss.raw_month_day();
        let month_ok = matches!(month, 0..=12 | 20..=32 | 40..=52);
        if !month_ok || day > 31 {
            return Err(err("the birth date part is not a date"));
        }
        Ok(niss)
    }

    fn raw_month_day(&self) -> (u32, u32) {
        let num = |r: std::ops::Range<usize>| self.digits.get(r).and_then(|s| s.parse().ok()).unwrap_or(0);
        (num(2..4), num(4..6))
    }

    /// True for BIS numbers (month shifted by 20 or 40).
    pub fn is_bis(&self) -> bool {
        self.raw_month_day().0 >= 20
    }

    /// The birth year the check digits imply.
    pub fn birth_year(&self) -> i32 {
        let yy: i32 = self.digits.get(0..2).and_then(|s| s.parse().ok()).unwrap_or(0);
        if self.born_after_1999 {
            2000 + yy
        } else {
            1900 + yy
        }
    }

    /// Month and day of birth, `None` where the number says "unknown" (00).
    pub fn birth_month_day(&self) -> (Option<u32>, Option<u32>) {
        let (month, day) = self.raw_month_day();
        let month = month % 20;
        ((month != 0).then_some(month), (day != 0).then_some(day))
    }

    /// The eleven digits. Only for the registry and the data subject's own organisation.
    pub fn reveal(&self) -> &str {
        &self.digits
    }

    /// `85.07.30-***.**`: the form allowed in messages and logs.
    pub fn masked(&self) -> String {
        let d = &self.digits;
        format!("{}.{}.{}-***.**", &d[0..2], &d[2..4], &d[4..6])
    }

    /// `text` with every national number in it masked, whether written with separators (`.`,
    /// `-`, `/`, spaces) or without, alone or glued to other digits (a run of digits that
    /// holds one is hidden whole). Only numbers whose check digits hold are masked: a valid
    /// enterprise number, a date or an invoice number stays readable.
    pub fn mask_in_text(text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_ascii_digit() {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | '-' | '/' | ' ')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            out.push_str(&mask_run(&run));
        }
        out
    }
}

/// One run of digits and separators, masked if it is or holds a national number.
fn mask_run(run: &str) -> String {
    let digits: Vec<char> = run.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 10 {
        return run.to_string();
    }
    // Ten digits could be a national number that lost its leading zero, or an enterprise
    // number: the enterprise number wins, it is not personal.
    if digits.len() == 10 && super::EnterpriseNumber::parse(run).is_ok() {
        return run.to_string();
    }
    if digits.len() <= 11 {
        if let Ok(niss) = Niss::parse(run) {
            return niss.masked();
        }
    }
    let hides_one = digits.windows(11).any(|window| Niss::parse(&window.iter().collect::<String>()).is_ok());
    if hides_one {
        "*".repeat(run.chars().count())
    } else {
        run.to_string()
    }
}

impl fmt::Display for Niss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Niss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Niss({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_national_numbers_are_masked_in_text() {
        assert_eq!(
            Niss::mask_in_text("/GP-1001/inbox/affiliations/85073003328.xlsx"),
            "/GP-1001/inbox/affiliations/85.07.30-***.**.xlsx"
        );
        assert_eq!(Niss::mask_in_text("sheet 85.07.30-033.28 final"), "sheet 85.07.30-***.** final");
        assert_eq!(Niss::mask_in_text("85073003329.xlsx"), "85073003329.xlsx", "wrong check digits: not a NISS");
        // BIS number (month + 40).
        let bis = format!("854730{:03}", 12);
        let body: u64 = bis.parse().unwrap();
        let bis = format!("{bis}{:02}", 97 - body % 97);
        assert_eq!(Niss::mask_in_text(&format!("{bis}.csv")), "85.47.30-***.**.csv");
        // Enterprise numbers stay readable, with or without separators.
        for enterprise in ["0403019261", "0403.019.261", "BE 0403.019.261", "0202.239.951"] {
            assert_eq!(
                Niss::mask_in_text(&format!("affiliations {enterprise}.xlsx")),
                format!("affiliations {enterprise}.xlsx")
            );
        }
    }

    #[test]
    fn valid_national_numbers_from_the_domain_vectors_parse_with_their_century() {
        let cases = [
            ("85073003328", 1985, (Some(7), Some(30))),
            ("93051822361", 1993, (Some(5), Some(18))),
            ("17073003384", 2017, (Some(7), Some(30))),
            ("01020312345", 2001, (Some(2), Some(3))),
            ("85473003317", 1985, (Some(7), Some(30))),
            ("85273002183", 1985, (Some(7), Some(30))),
            ("85070003355", 1985, (Some(7), None)),
        ];
        for (input, year, month_day) in cases {
            let niss = Niss::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(niss.birth_year(), year, "{input}");
            assert_eq!(niss.birth_month_day(), month_day, "{input}");
        }
        assert!(Niss::parse("85473003317").unwrap().is_bis());
        assert!(!Niss::parse("85073003328").unwrap().is_bis());
    }

    #[test]
    fn separators_and_a_lost_leading_zero_are_tolerated() {
        assert_eq!(Niss::parse("85.07.30-033.28").unwrap().reveal(), "85073003328");
        assert_eq!(Niss::parse("1020312345").unwrap().reveal(), "01020312345");
    }

    #[test]
    fn invalid_national_numbers_are_refused() {
        assert!(Niss::parse("85073003329").unwrap_err().why.contains("check"));
        assert!(Niss::parse("12345678901").is_err());
        assert!(Niss::parse("8507300332").is_err());
        assert!(Niss::parse("85O73003328").is_err());
    }

    #[test]
    fn a_national_number_never_prints_in_full() {
        let niss = Niss::parse("85073003328").unwrap();
        assert_eq!(niss.to_string(), "85.07.30-***.**");
        assert!(!format!("{niss:?}").contains("03328"));
    }
}
