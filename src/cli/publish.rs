//! `publish`: documents, one by one or from a manifest.

use super::prelude::*;

#[derive(Args)]
pub struct PublishArgs {
    #[arg(long, value_name = "C", value_parser = ContractNumber::parse, required_unless_present = "manifest")]
    contract: Option<ContractNumber>,
    #[arg(long, value_parser = KindName::parse, required_unless_present = "manifest")]
    kind: Option<KindName>,
    /// The year, for kinds filed per year (pension sheets).
    #[arg(long, value_name = "YEAR", value_parser = parse_year)]
    period: Option<Year>,
    /// A CSV file with the columns file, contract, kind, period (for nightly runs); file paths
    /// are relative to the manifest's folder.
    #[arg(long, value_name = "FILE.csv", conflicts_with_all = ["contract", "kind", "period", "files"])]
    manifest: Option<PathBuf>,
    #[arg(value_name = "FILE", required_unless_present = "manifest")]
    files: Vec<PathBuf>,
}

/// One document to publish.
pub struct PublishItem {
    file: PathBuf,
    contract: ContractNumber,
    kind: KindName,
    period: Option<Year>,
}

/// Reads a publishing manifest; a line that does not parse is reported and skipped.
pub fn read_manifest(path: &Path) -> Result<(Vec<PublishItem>, Vec<String>), Failure> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read the manifest {}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: no header line", path.display()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(file_at), Some(contract_at), Some(kind_at)) = (column("file"), column("contract"), column("kind")) else {
        return Err(invalid(format!(
            "{}: the header must name the columns file, contract, kind (and period)",
            path.display()
        )));
    };
    let period_at = column("period");
    let (mut items, mut problems) = (Vec::new(), Vec::new());
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                problems.push(format!("line {line}: {error}"));
                continue;
            }
        };
        let field = |at: usize| record.get(at).unwrap_or("").to_string();
        let parsed = (|| -> Result<PublishItem, String> {
            let contract = ContractNumber::parse(&field(contract_at)).map_err(|e| e.to_string())?;
            let kind = KindName::parse(&field(kind_at)).map_err(|e| e.to_string())?;
            let period = match period_at.map(field).filter(|p| !p.is_empty()) {
                Some(p) => Some(parse_year(&p)?),
                None => None,
            };
            let file = field(file_at);
            if file.is_empty() {
                return Err("the file column is empty".into());
            }
            Ok(PublishItem { file: base.join(file), contract, kind, period })
        })();
        match parsed {
            Ok(item) => items.push(item),
            Err(message) => problems.push(format!("line {line}: {message}")),
        }
    }
    Ok((items, problems))
}

pub async fn publish(settings: &Settings, args: PublishArgs) -> Result<(), Failure> {
    let admin = admin(settings).await?;
    let (items, problems) = match &args.manifest {
        Some(manifest) => read_manifest(manifest)?,
        None => {
            let (Some(contract), Some(kind)) = (args.contract.clone(), args.kind.clone()) else {
                return Err(invalid("publish needs --contract and --kind, or --manifest"));
            };
            let items = args
                .files
                .iter()
                .map(|file| PublishItem {
                    file: file.clone(),
                    contract: contract.clone(),
                    kind: kind.clone(),
                    period: args.period,
                })
                .collect();
            (items, Vec::new())
        }
    };
    for problem in &problems {
        eprintln!("{problem}");
    }
    let single = items.len() == 1 && problems.is_empty() && args.manifest.is_none();
    let show_progress = std::io::stderr().is_terminal() && items.len() > 1;
    let (mut published, mut unchanged, mut failed) = (0usize, 0usize, problems.len());
    let mut digest = pension_gateway::notify::Published::default();
    for (index, item) in items.iter().enumerate() {
        match admin.publish(&item.contract, &item.kind, item.period, &item.file).await {
            Ok(PublishOutcome::Published { replaced }) => {
                published += 1;
                digest.add(&item.contract, item.kind.as_str());
                if !show_progress {
                    println!(
                        "{}: published{}",
                        item.file.display(),
                        if replaced { " (replaces the previous version)" } else { "" }
                    );
                }
            }
            Ok(PublishOutcome::Unchanged) => {
                unchanged += 1;
                if !show_progress {
                    println!("{}: unchanged (same content already published)", item.file.display());
                }
            }
            Err(error) if error.exit_code() == 2 && single => return Err(error.into()),
            Err(error) => {
                failed += 1;
                eprintln!("{}: {error:#}", item.file.display());
            }
        }
        if show_progress {
            eprint!("\rpublished {}/{}", index + 1, items.len());
        }
    }
    if show_progress {
        eprintln!();
    }
    let notified = admin.send_publication_digests(&digest).await?;
    println!("{published} published, {unchanged} unchanged, {failed} failed; {notified} organisation(s) notified");
    if failed > 0 {
        return Err(Failure { code: 1, error: anyhow::anyhow!("{failed} file(s) could not be published") });
    }
    Ok(())
}
