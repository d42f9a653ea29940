//! What `make test` runs of the fuzzer: every input of the committed
//! corpus (inputs that once panicked or blew memory) must now decode
//! within the rules, and a short deterministic run must find nothing.

use std::path::PathBuf;
use std::sync::Mutex;

use scylla_shard_fuzz::{allocation_site, check, corpus, fuzz, seeds, Config, FindingKind};

/// The allocation counters are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
fn corpus_inputs_decode_within_the_rules() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let inputs = corpus(&corpus_dir()).expect("read fuzz/corpus");
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|(path, input)| {
            let finding = check(input).err()?;
            let site = match finding.kind {
                FindingKind::Memory => format!(", in {}", allocation_site(input, finding.largest)),
                FindingKind::Panic => String::new(),
            };
            Some(format!("{}: {finding}{site}", path.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} corpus inputs still fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_seed_decodes_within_the_rules() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let seeds = seeds::all();
    assert!(seeds.len() > 50, "only {} seeds", seeds.len());
    for seed in &seeds {
        if let Err(finding) = check(seed) {
            panic!("seed input fails: {finding}");
        }
    }
}

#[test]
fn short_deterministic_run_finds_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let report = fuzz(&Config {
        seed: 20_261_124,
        iterations: Some(300_000),
        duration: None,
        max_findings: 10,
    });
    assert_eq!(report.iterations, 300_000);
    let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert!(
        findings.is_empty(),
        "{} findings (run `make fuzz` to save them):\n{}",
        findings.len(),
        findings.join("\n")
    );
}
