//! Reading uploaded spreadsheets into rows of cells: `.xlsx`, `.xls`, `.ods` with calamine,
//! `.csv` (`;` or `,`, UTF-8 with or without BOM, or Windows-1252) with the csv reader.
//!
//! Hostile files are stopped before the parser sees them: the size is capped, a zip container
//! (`.xlsx`, `.ods`) has its entries counted and every entry decompressed into a counting sink
//! with a cap (declared sizes can lie), and the row count is capped after reading. A text cell
//! longer than a spreadsheet cell may be is kept as its length only ([`Cell::TooLong`]).
//!
//! These functions parse untrusted bytes: the gateway runs them only in the reading child
//! process (`reader_process`), never in the server itself.

use std::io::Cursor;

use calamine::{Data, DataRef, Ods, Reader, Xls, Xlsx};
use serde::{Deserialize, Serialize};
use time::Date;

use super::schema::FileFormat;

/// Cells beyond this column are refused: no schema has that many columns.
pub const MAX_COLUMNS: u32 = 512;
/// The most characters a cell may hold in xlsx (Excel's own limit), applied to every format.
pub const MAX_CELL_CHARACTERS: usize = 32_767;

/// One cell as read, before the schema gives it a type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cell {
    #[serde(rename = "e")]
    Empty,
    #[serde(rename = "t")]
    Text(String),
    #[serde(rename = "n")]
    Number(f64),
    #[serde(rename = "b")]
    Bool(bool),
    /// A real date cell.
    #[serde(rename = "d")]
    Date(Date),
    #[serde(rename = "x")]
    Error(String),
    /// A text longer than [`MAX_CELL_CHARACTERS`]: only its length is kept.
    #[serde(rename = "l")]
    TooLong { characters: usize },
}

/// A row with its number as the spreadsheet shows it (1-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetRow {
    pub number: u32,
    pub cells: Vec<Cell>,
}

/// The first sheet of a file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sheet {
    pub rows: Vec<SheetRow>,
}

/// Bounds against hostile files.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ReadLimits {
    pub max_file_bytes: u64,
    pub max_rows: usize,
    pub max_zip_entries: usize,
    pub max_uncompressed_bytes: u64,
    pub max_compression_ratio: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            max_rows: 200_000,
            max_zip_entries: 10_000,
            max_uncompressed_bytes: 200 * 1024 * 1024,
            max_compression_ratio: 200,
        }
    }
}

/// Why a file could not be read at all; each becomes one report line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReadError {
    #[error("format .{extension} not allowed")]
    FormatNotAllowed { extension: String, allowed: Vec<String> },
    #[error("file larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("suspicious archive: {detail}")]
    ArchiveSuspicious { detail: String },
    #[error("unreadable {format}: {detail}")]
    Unreadable { format: String, detail: String },
    #[error("more than {limit} rows")]
    TooManyRows { limit: usize },
    /// The reading child process broke one of its limits, died, or answered nonsense.
    #[error("the file could not be read within the limits: {0}")]
    OutsideLimits(LimitBreach),
}

/// Which limit of the reading child process a file broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum LimitBreach {
    #[error("reading it needs more than {mib} MiB of memory")]
    Memory { mib: u64 },
    #[error("reading it takes more than {seconds} seconds")]
    Time { seconds: u64 },
    #[error("reading it produces more than {mib} MiB of cells")]
    Answer { mib: u64 },
    #[error("the reader stopped ({how})")]
    Stopped { how: String },
}

/// Reads the first sheet of `bytes`, whose format is given by the file name's extension.
pub fn read(file_name: &str, bytes: &[u8], allowed: &[FileFormat], limits: &ReadLimits) -> Result<Sheet, ReadError> {
    let extension = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let format = FileFormat::from_extension(file_name).filter(|f| allowed.contains(f)).ok_or_else(|| {
        ReadError::FormatNotAllowed {
            extension: extension.clone(),
            allowed: allowed.iter().map(|f| f.as_str().to_string()).collect(),
        }
    })?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ReadError::TooLarge { limit: limits.max_file_bytes });
    }
    let unreadable = |detail: String| ReadError::Unreadable { format: format.as_str().to_string(), detail };
    let sheet = match format {
        FileFormat::Xlsx | FileFormat::Ods => {
            if !bytes.starts_with(b"PK\x03\x04") {
                return Err(unreadable("this is not a spreadsheet of that type (it is not a zip archive)".into()));
            }
            inspect_zip(bytes, limits)?;
            if format == FileFormat::Xlsx {
                read_xlsx(bytes, limits)?
            } else {
                let mut workbook: Ods<_> = Ods::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
                sheet_from_range(&first_sheet(&mut workbook).map_err(unreadable)?, limits)?
            }
        }
        FileFormat::Xls => {
            if !bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
                return Err(unreadable("this is not an Excel 97-2003 workbook".into()));
            }
            let mut workbook: Xls<_> = Xls::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
            sheet_from_range(&first_sheet(&mut workbook).map_err(unreadable)?, limits)?
        }
        FileFormat::Csv => read_csv(bytes, limits).map_err(unreadable)?,
    };
    if sheet.rows.len() > limits.max_rows {
        return Err(ReadError::TooManyRows { limit: limits.max_rows });
    }
    Ok(sheet)
}

fn first_sheet<'a, R>(workbook: &mut R) -> Result<calamine::Range<Data>, String>
where
    R: Reader<Cursor<&'a [u8]>>,
    R::Error: std::fmt::Display,
{
    match workbook.worksheet_range_at(0) {
        Some(Ok(range)) => Ok(range),
        Some(Err(error)) => Err(error.to_string()),
        None => Err("the workbook has no sheet".into()),
    }
}

/// Counts entries and adds up their uncompressed sizes before anything is decompressed. The
/// zip reader stops any entry at its declared size, so the declared sizes bound what a parser
/// can be made to inflate.
fn inspect_zip(bytes: &[u8], limits: &ReadLimits) -> Result<(), ReadError> {
    let suspicious = |detail: String| ReadError::ArchiveSuspicious { detail };
    let unreadable =
        |e: zip::result::ZipError| ReadError::Unreadable { format: "zip".to_string(), detail: e.to_string() };
    let archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    if archive.len() > limits.max_zip_entries {
        return Err(suspicious(format!("it holds {} parts (at most {})", archive.len(), limits.max_zip_entries)));
    }
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(unreadable)?;
        total = total.saturating_add(entry.size());
    }
    if total > limits.max_uncompressed_bytes {
        return Err(suspicious(format!(
            "it expands to {} MiB (at most {} MiB)",
            total / (1024 * 1024),
            limits.max_uncompressed_bytes / (1024 * 1024)
        )));
    }
    let ratio = total / (bytes.len() as u64).max(1);
    if total > 16 * 1024 * 1024 && ratio > limits.max_compression_ratio {
        return Err(suspicious(format!(
            "it expands {ratio} times its size (at most {})",
            limits.max_compression_ratio
        )));
    }
    Ok(())
}

/// The first worksheet of an xlsx, cell by cell: calamine's ranges allocate the whole bounding
/// box, so one cell far away (XFD1048576) would exhaust memory before any limit is checked.
fn read_xlsx(bytes: &[u8], limits: &ReadLimits) -> Result<Sheet, ReadError> {
    let unreadable = |detail: String| ReadError::Unreadable { format: "xlsx".to_string(), detail };
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    let name = workbook.sheet_names().first().cloned().ok_or_else(|| unreadable("the workbook has no sheet".into()))?;
    let mut reader = workbook.worksheet_cells_reader(&name).map_err(|e| unreadable(e.to_string()))?;
    let mut rows: std::collections::BTreeMap<u32, Vec<(u32, Cell)>> = std::collections::BTreeMap::new();
    while let Some(cell) = reader.next_cell().map_err(|e| unreadable(e.to_string()))? {
        let (row, column) = cell.get_position();
        let value = cell.get_value();
        if *value == DataRef::Empty {
            continue;
        }
        if column >= MAX_COLUMNS {
            return Err(unreadable(format!("a cell lies beyond column {MAX_COLUMNS}")));
        }
        if !rows.contains_key(&row) && rows.len() > limits.max_rows + 50 {
            return Err(ReadError::TooManyRows { limit: limits.max_rows });
        }
        // A shared string is borrowed: one huge string used by many cells is never copied.
        let cell = match value {
            DataRef::SharedString(text) => text_cell(text),
            DataRef::String(text) => text_cell(text),
            other => cell_from(&other.clone().into()),
        };
        rows.entry(row).or_default().push((column, cell));
    }
    let rows = rows
        .into_iter()
        .map(|(row, cells)| {
            let width = cells.iter().map(|(c, _)| *c as usize + 1).max().unwrap_or(0);
            let mut dense = vec![Cell::Empty; width];
            for (column, cell) in cells {
                if let Some(slot) = dense.get_mut(column as usize) {
                    *slot = cell;
                }
            }
            SheetRow { number: row + 1, cells: dense }
        })
        .collect();
    Ok(Sheet { rows })
}

/// A text cell, or its length only when it is longer than a cell may be. Control characters
/// (other than tab and line ends) become U+FFFD: they mean nothing in a cell, and each would
/// take six bytes in the answer to the server.
fn text_cell(text: &str) -> Cell {
    // Cheap first: fewer bytes than the limit means fewer characters too.
    if text.len() > MAX_CELL_CHARACTERS {
        let characters = text.chars().count();
        if characters > MAX_CELL_CHARACTERS {
            return Cell::TooLong { characters };
        }
    }
    let stray = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    if text.chars().any(stray) {
        return Cell::Text(text.chars().map(|c| if stray(c) { '\u{fffd}' } else { c }).collect());
    }
    Cell::Text(text.to_string())
}

/// A number, or `#Num` (as a spreadsheet shows a number out of range) when it is not finite:
/// a cell holding `1e400` reads as infinity, which the reader's answer cannot carry.
fn number_cell(value: f64) -> Cell {
    if value.is_finite() {
        Cell::Number(value)
    } else {
        Cell::Error(format!("{:?}", calamine::CellErrorType::Num))
    }
}

fn cell_from(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(s) => text_cell(s),
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => number_cell(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (year, month, day, ..) = dt.to_ymd_hms_milli();
            time::Month::try_from(month)
                .ok()
                .and_then(|m| Date::from_calendar_date(i32::from(year), m, day).ok())
                .map(Cell::Date)
                .unwrap_or_else(|| number_cell(dt.as_f64()))
        }
        Data::DateTime(dt) => number_cell(dt.as_f64()),
        Data::DateTimeIso(text) => text
            .get(..10)
            .and_then(|d| Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok())
            .map(Cell::Date)
            .unwrap_or_else(|| text_cell(text)),
        Data::DurationIso(text) => text_cell(text),
        Data::Error(e) => Cell::Error(format!("{e:?}")),
    }
}

fn sheet_from_range(range: &calamine::Range<Data>, limits: &ReadLimits) -> Result<Sheet, ReadError> {
    let (first_row, _) = range.start().unwrap_or((0, 0));
    if range.height() > limits.max_rows + 50 {
        return Err(ReadError::TooManyRows { limit: limits.max_rows });
    }
    let rows = range
        .rows()
        .enumerate()
        .map(|(i, cells)| SheetRow { number: first_row + i as u32 + 1, cells: cells.iter().map(cell_from).collect() })
        .collect();
    Ok(Sheet { rows })
}

/// UTF-8 (a BOM is dropped) or, when the bytes are not UTF-8, Windows-1252.
fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

fn read_csv(bytes: &[u8], limits: &ReadLimits) -> Result<Sheet, String> {
    let text = decode_text(bytes);
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = if first_line.matches(',').count() > first_line.matches(';').count() { b',' } else { b';' };
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // The row number is the line a record starts on, counted here: the csv reader's own line
    // count falls one short at each CRLF line end.
    let (bytes, mut line, mut counted) = (text.as_bytes(), 1u32, 0usize);
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        if rows.len() > limits.max_rows + 50 {
            break;
        }
        let start = record.position().map_or(counted, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        let mut start = start.clamp(counted, bytes.len());
        // After a CR the reader may place the next record on the LF that ends the line.
        while bytes.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            start += 1;
        }
        line += bytes[counted..start].iter().filter(|b| **b == b'\n').count() as u32;
        counted = start;
        let number = line;
        let cells =
            record.iter().map(|field| if field.trim().is_empty() { Cell::Empty } else { text_cell(field) }).collect();
        rows.push(SheetRow { number, cells });
    }
    Ok(Sheet { rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_out_of_range_reads_as_a_num_error_and_survives_the_answer() {
        for value in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let cell = cell_from(&Data::Float(value));
            assert_eq!(cell, Cell::Error("Num".into()));
            let answer = serde_json::to_string(&cell).unwrap();
            assert_eq!(serde_json::from_str::<Cell>(&answer).unwrap(), cell);
        }
        assert_eq!(cell_from(&Data::Float(1.5)), Cell::Number(1.5));
    }

    const ALL: [FileFormat; 4] = [FileFormat::Xlsx, FileFormat::Xls, FileFormat::Ods, FileFormat::Csv];

    #[test]
    fn csv_with_bom_semicolons_and_windows_1252_is_read() {
        let utf8 = "\u{feff}Nom;Prénom\nDupont;Zoë\n";
        let sheet = read("a.csv", utf8.as_bytes(), &ALL, &ReadLimits::default()).unwrap();
        assert_eq!(sheet.rows[0].cells, vec![Cell::Text("Nom".into()), Cell::Text("Prénom".into())]);
        assert_eq!(sheet.rows[1].number, 2);
        let latin1: Vec<u8> = b"Nom,Pr\xe9nom\nDupont,Zo\xeb\n".to_vec();
        let sheet = read("a.csv", &latin1, &ALL, &ReadLimits::default()).unwrap();
        assert_eq!(sheet.rows[1].cells[1], Cell::Text("Zoë".into()));
    }

    #[test]
    fn a_file_that_is_not_what_its_name_says_is_refused_cleanly() {
        let error = read("a.xlsx", b"name;first\n", &ALL, &ReadLimits::default()).unwrap_err();
        assert!(matches!(&error, ReadError::Unreadable { format, .. } if format == "xlsx"), "{error:?}");
        let error = read("a.xls", b"PK\x03\x04garbage", &ALL, &ReadLimits::default()).unwrap_err();
        assert!(matches!(&error, ReadError::Unreadable { format, .. } if format == "xls"), "{error:?}");
        let error = read("a.xlsx", b"PK\x03\x04garbage", &ALL, &ReadLimits::default()).unwrap_err();
        assert!(matches!(error, ReadError::Unreadable { .. }), "{error:?}");
        let error = read("a.pdf", b"%PDF", &ALL, &ReadLimits::default()).unwrap_err();
        assert!(matches!(error, ReadError::FormatNotAllowed { .. }));
    }

    #[test]
    fn csv_rows_are_numbered_as_a_spreadsheet_shows_them() {
        for text in [
            "Nom;Prénom\nDupont;Zoë\nMartin;Jan\n",
            "Nom;Prénom\r\nDupont;Zoë\r\nMartin;Jan\r\n",
            "\u{feff}Nom;Prénom\nDupont;Zoë\nMartin;Jan",
        ] {
            let sheet = read("a.csv", text.as_bytes(), &ALL, &ReadLimits::default()).unwrap();
            let numbers: Vec<u32> = sheet.rows.iter().map(|r| r.number).collect();
            assert_eq!(numbers, vec![1, 2, 3], "{text:?}");
        }
        let with_blank = "Nom;Prénom\n\nDupont;Zoë\n";
        let sheet = read("a.csv", with_blank.as_bytes(), &ALL, &ReadLimits::default()).unwrap();
        assert_eq!(sheet.rows.last().unwrap().number, 3, "a blank line still counts as a line");
    }

    #[test]
    fn limits_on_size_and_rows_hold() {
        let limits = ReadLimits { max_file_bytes: 10, ..ReadLimits::default() };
        assert_eq!(read("a.csv", b"0123456789ab", &ALL, &limits).unwrap_err(), ReadError::TooLarge { limit: 10 });
        let limits = ReadLimits { max_rows: 2, ..ReadLimits::default() };
        assert!(matches!(read("a.csv", b"a\nb\nc\n", &ALL, &limits), Err(ReadError::TooManyRows { .. })));
    }
}
