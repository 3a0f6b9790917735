//! Property-based fuzzing of the spreadsheet reader as the gateway runs it: in its confined
//! child process, on damaged real `.xlsx` files (bytes flipped, cut or inserted in the
//! archive, or inside one of its XML parts re-packed as a valid archive). Whatever the file,
//! the gateway gets an answer (the sheet, or why the file is refused) and the child never
//! dies of anything but a limit it was given. `scripts/fuzz CASES` runs it long.

use std::io::{Cursor, Read, Write};
use std::time::Duration;

use pension_gateway::ingest::read::{Cell, LimitBreach, ReadError, ReadLimits};
use pension_gateway::ingest::reader_process::{ReaderProcess, ReaderSettings};
use pension_gateway::ingest::schema::FileFormat;
use proptest::prelude::*;

/// A small affiliations workbook, as the gateway's own writer makes it, with a META sheet.
fn seed_workbook() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let rows = [
        ["N° de contrat", "N° d'entreprise", "NISS", "Nom", "Prénom", "Date d'entrée", "Salaire annuel"],
        ["GP-1001", "0403019261", "85073003328", "Dupont", "Marie", "01/06/2026", "42000"],
        ["GP-1001", "0403019261", "90010100196", "Peeters", "Jan", "15/06/2026", "38500,50"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *value).unwrap();
        }
    }
    sheet.write_number(3, 6, 1.5e300).unwrap();
    sheet.write_formula(4, 6, "=SUM(G2:G3)").unwrap();
    let meta = workbook.add_worksheet().set_name("META").unwrap();
    meta.write_string(0, 0, "template_id").unwrap();
    meta.write_string(0, 1, "T-2026-GP-1001").unwrap();
    workbook.save_to_buffer().unwrap()
}

/// The archive's members, uncompressed, in order.
fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|index| {
            let mut member = archive.by_index(index).unwrap();
            let mut content = Vec::new();
            member.read_to_end(&mut content).unwrap();
            (member.name().unwrap().to_string(), content)
        })
        .collect()
}

fn repack(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in members {
        writer.start_file(name.as_str(), stored).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Pieces of XML that parsers of spreadsheets have tripped on.
const SNIPPETS: &[&str] = &[
    r#"<dimension ref="A1:XFD1048576"/>"#,
    r#"<row r="1048576"><c r="XFD1048576" t="s"><v>4294967295</v></c></row>"#,
    r#"<c r="A1" t="s"><v>-1</v></c>"#,
    r#"<c r="ZZZZZZ99999999999" t="n"><v>1e400</v></c>"#,
    r#"<c r="B2" t="d"><v>not-a-date</v></c>"#,
    r#"<c r="B2" t="e"><v>#DIV/0!</v></c>"#,
    r#"<c r="" t="inlineStr"><is><t>x</t></is></c>"#,
    "<![CDATA[",
    "&#0;&#xFFFF;&unknown;",
    "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>",
    "</sheetData></worksheet></worksheet>",
    r#"<?xml version="1.0" encoding="UTF-16"?>"#,
    r#"<sheet name="META" sheetId="99" r:id="rId99"/>"#,
    r#"<si><t xml:space="preserve">"#,
    "\u{0}\u{FEFF}\u{FFFD}",
];

#[derive(Debug, Clone)]
enum Damage {
    /// Byte `at` (a fraction of the length, in millionths) set to `value`.
    Flip { at: u32, value: u8 },
    /// Cut to a fraction of the length.
    Cut { keep: u32 },
    /// A snippet inserted at a fraction of the length.
    Insert { at: u32, snippet: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<u32>(), any::<u8>()).prop_map(|(at, value)| Damage::Flip { at: at % 1_000_000, value }),
        1 => (0u32..1_000_000).prop_map(|keep| Damage::Cut { keep }),
        3 => (any::<u32>(), 0..SNIPPETS.len()).prop_map(|(at, snippet)| Damage::Insert { at: at % 1_000_000, snippet }),
    ]
}

fn apply(bytes: &mut Vec<u8>, damages: &[Damage]) {
    for damage in damages {
        let at = |millionths: u32| (bytes.len() as u64 * u64::from(millionths) / 1_000_000) as usize;
        match *damage {
            Damage::Flip { at: position, value } => {
                let index = at(position);
                if let Some(byte) = bytes.get_mut(index) {
                    *byte = value;
                }
            }
            Damage::Cut { keep } => bytes.truncate(at(keep)),
            Damage::Insert { at: position, snippet } => {
                let index = at(position);
                bytes.splice(index..index, SNIPPETS[snippet].bytes());
            }
        }
    }
}

/// A damaged file: the archive's bytes, or one member's XML in a sound archive.
#[derive(Debug, Clone)]
struct Case {
    /// `None`: the archive itself; `Some(i)`: its member `i` (modulo the count).
    member: Option<usize>,
    damages: Vec<Damage>,
    template_meta: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    (proptest::option::weighted(0.7, 0usize..64), proptest::collection::vec(damage(), 1..6), any::<bool>())
        .prop_map(|(member, damages, template_meta)| Case { member, damages, template_meta })
}

fn damaged(seed: &[u8], seed_members: &[(String, Vec<u8>)], case: &Case) -> Vec<u8> {
    match case.member {
        None => {
            let mut bytes = seed.to_vec();
            apply(&mut bytes, &case.damages);
            bytes
        }
        Some(index) => {
            let mut members = seed_members.to_vec();
            let index = index % members.len();
            apply(&mut members[index].1, &case.damages);
            repack(&members)
        }
    }
}

/// The gateway's own reader child, as ingestion runs it, and a runtime to drive it.
fn confined_reader() -> (tokio::runtime::Runtime, ReaderProcess) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let reader = ReaderProcess::new(ReaderSettings {
        program: env!("CARGO_BIN_EXE_pension-gateway").into(),
        memory_mib: 512,
        time_limit: Duration::from_secs(20),
        concurrency: 2,
    });
    (runtime, reader)
}

#[test]
fn fuzz_damaged_spreadsheets_get_an_answer_from_the_confined_reader() {
    let (runtime, reader) = confined_reader();
    let limits = ReadLimits::default();
    let seed = seed_workbook();
    let seed_members = members(&seed);
    // The seed itself reads: the damage, not the set-up, is what the cases try.
    let sound = runtime.block_on(reader.read("seed.xlsx", seed.clone().into(), &[FileFormat::Xlsx], &limits, true));
    assert!(matches!(sound, Ok(Ok(_))), "{sound:?}");

    let cases_to_run = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(cases_to_run));
    runner
        .run(&cases(), |case| {
            let bytes = damaged(&seed, &seed_members, &case);
            let answer = runtime.block_on(reader.read(
                "damaged.xlsx",
                bytes.into(),
                &[FileFormat::Xlsx],
                &limits,
                case.template_meta,
            ));
            match answer {
                // Read, or refused with a reason a report can give.
                Ok(Ok(_))
                | Ok(Err(
                    ReadError::Unreadable { .. }
                    | ReadError::ArchiveSuspicious { .. }
                    | ReadError::TooManyRows { .. }
                    | ReadError::OutsideLimits(
                        LimitBreach::Memory { .. } | LimitBreach::Time { .. } | LimitBreach::Answer { .. },
                    ),
                )) => Ok(()),
                // The child died of something it was not limited in: a crash to fix.
                other => Err(TestCaseError::fail(format!("{other:?}"))),
            }
        })
        .unwrap();
}

/// Found by the fuzz test above: a number cell of `1e400` reads as infinity, which the
/// reader's answer could not carry, and the file was refused as a broken answer. It reads now,
/// the cell as a `#Num` error that validation reports on its row.
#[test]
fn a_number_too_large_for_a_double_reads_as_a_cell_error() {
    let (runtime, reader) = confined_reader();
    let seed = seed_workbook();
    let mut members = members(&seed);
    let sheet = members.iter_mut().find(|(name, _)| name.ends_with("worksheets/sheet1.xml")).expect("a first sheet");
    let text = String::from_utf8(sheet.1.clone()).unwrap();
    let at = text.find("</row>").expect("a row");
    let huge = r#"<c r="AZ1" t="n"><v>1e400</v></c>"#;
    sheet.1 = format!("{}{}{}", &text[..at], huge, &text[at..]).into_bytes();
    let answer = runtime.block_on(reader.read(
        "huge-number.xlsx",
        repack(&members).into(),
        &[FileFormat::Xlsx],
        &ReadLimits::default(),
        true,
    ));
    let contents = match answer {
        Ok(Ok(contents)) => contents,
        other => panic!("expected the file to read, got {other:?}"),
    };
    let first_row = contents.sheet.rows.iter().find(|row| row.number == 1).expect("row 1");
    // AZ is the 52nd column.
    assert_eq!(first_row.cells.get(51), Some(&Cell::Error("Num".into())), "{:?}", first_row.cells);
}
