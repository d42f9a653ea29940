//! A bounded mutation fuzzer over libscylla_shard's frame and value
//! decoders (`scylla_shard::protocol`), on the stable toolchain.
//!
//! Each input runs one decoder (see [`targets`]) under a counting global
//! allocator ([`meter`]); a finding is a panic, or an input that made the
//! decoders allocate more than [`memory_budget`] of its size. Inputs that
//! reach a new outcome (a new error class, a new message kind) join the
//! pool mutations draw from: a cheap stand-in for coverage feedback.
//! Findings are saved in the corpus directory (`fuzz/corpus/`), which
//! `make test` replays.

pub mod crash;
pub mod meter;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: meter::CountingAllocator = meter::CountingAllocator;

/// Most the pool grows to (seeds plus inputs with new outcomes).
const MAX_POOL: usize = 20_000;

/// Bytes an input may make the decoders allocate, live at once or in one
/// request: a constant for the fixed costs plus a factor of its size
/// (decoded values are bigger than their wire form, never by more).
pub fn memory_budget(input_len: usize) -> usize {
    64 * 1024 + 32 * input_len
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    Panic,
    Memory,
}

/// An input that broke a rule.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: FindingKind,
    /// A memory finding's largest single allocation.
    pub largest: usize,
    pub detail: String,
    pub input: Vec<u8>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FindingKind::Panic => "panic",
            FindingKind::Memory => "memory",
        };
        write!(
            f,
            "{kind}: {} (input of {} bytes: {})",
            self.detail,
            self.input.len(),
            hex_prefix(&self.input)
        )
    }
}

fn hex_prefix(input: &[u8]) -> String {
    let mut out: String = input.iter().take(48).map(|b| format!("{b:02x}")).collect();
    if input.len() > 48 {
        out.push_str("...");
    }
    out
}

/// Inside [`check`], keeps the panic message for the finding instead of
/// printing it; elsewhere panics print as usual.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CHECK.with(std::cell::Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

thread_local! {
    static IN_CHECK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs one input: its outcome signature, or why it is a finding. Not
/// reentrant: the allocation counters are process-wide.
pub fn check(input: &[u8]) -> Result<u64, Finding> {
    install_panic_hook();
    crash::set_current(input);
    IN_CHECK.with(|c| c.set(true));
    let mark = meter::mark();
    let outcome = std::panic::catch_unwind(|| targets::run(input));
    let usage = mark.usage();
    IN_CHECK.with(|c| c.set(false));
    crash::clear_current();
    let finding = |kind, detail| Finding {
        kind,
        largest: usage.largest,
        detail,
        input: input.to_vec(),
    };
    let signature = outcome.map_err(|_| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_default();
        finding(FindingKind::Panic, message)
    })?;
    let budget = memory_budget(input.len());
    if usage.peak > budget || usage.largest > budget {
        return Err(finding(
            FindingKind::Memory,
            format!(
                "allocated {} bytes at peak, {} in one request, for {} input bytes (budget {budget})",
                usage.peak,
                usage.largest,
                input.len()
            ),
        ));
    }
    Ok(signature)
}

/// How long and from where a run goes.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Stop after this many inputs...
    pub iterations: Option<u64>,
    /// ... or after this long, whichever comes first.
    pub duration: Option<Duration>,
    /// Stop after this many distinct findings.
    pub max_findings: usize,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub iterations: u64,
    pub pool: usize,
    pub outcomes: usize,
    pub findings: Vec<Finding>,
    pub elapsed: Duration,
}

/// Mutates the seeds (and what they led to) until the budget is spent.
pub fn fuzz(config: &Config) -> Report {
    let started = Instant::now();
    let mut rng = mutate::Rng::new(config.seed);
    let mut pool = seeds::all();
    let seed_count = pool.len();
    let mut outcomes = HashSet::new();
    let mut report = Report::default();
    let mut finding_classes = HashSet::new();
    for seed in pool.clone() {
        match check(&seed) {
            Ok(signature) => {
                outcomes.insert(signature);
            }
            Err(finding) => record(&mut report, &mut finding_classes, finding),
        }
    }
    let mut input = Vec::with_capacity(mutate::MAX_INPUT);
    loop {
        let done_iterations = config.iterations.is_some_and(|n| report.iterations >= n);
        // The clock is read every 256 inputs.
        let done_time =
            report.iterations % 256 == 0 && config.duration.is_some_and(|d| started.elapsed() >= d);
        if done_iterations || done_time || report.findings.len() >= config.max_findings {
            break;
        }
        report.iterations += 1;
        input.clear();
        input.extend_from_slice(&pool[rng.below(pool.len())]);
        mutate::mutate(&mut input, &pool, &mut rng);
        match check(&input) {
            Ok(signature) => {
                if outcomes.insert(signature) {
                    // Once full, a new input replaces a random one (never
                    // a seed), so the pool keeps moving.
                    if pool.len() < MAX_POOL {
                        pool.push(input.clone());
                    } else {
                        let at = seed_count + rng.below(MAX_POOL - seed_count);
                        pool[at].clone_from(&input);
                    }
                }
            }
            Err(finding) => record(&mut report, &mut finding_classes, finding),
        }
    }
    report.pool = pool.len();
    report.outcomes = outcomes.len();
    report.elapsed = started.elapsed();
    report
}

/// Keeps one finding per class: a panic's message and place, or the
/// function that made a memory finding's largest allocation.
fn record(report: &mut Report, classes: &mut HashSet<String>, mut finding: Finding) {
    if finding.kind == FindingKind::Memory {
        let site = allocation_site(&finding.input, finding.largest);
        finding.detail = format!("{}, in {site}", finding.detail);
    }
    let class: String = format!("{:?} {}", finding.kind, finding.detail)
        .split(", in ")
        .last()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    if classes.insert(format!("{:?} {class}", finding.kind)) {
        report.findings.push(finding);
    }
}

/// The innermost library function on the stack of the input's allocation
/// of `largest` bytes (the input is run again to find it).
pub fn allocation_site(input: &[u8], largest: usize) -> String {
    meter::explain_above(largest.saturating_sub(1), false);
    IN_CHECK.with(|c| c.set(true));
    let _ = std::panic::catch_unwind(|| targets::run(input));
    IN_CHECK.with(|c| c.set(false));
    meter::explain_above(usize::MAX, false);
    let stacks = meter::take_explained();
    stacks
        .iter()
        .find_map(|stack| {
            stack
                .lines()
                .filter_map(|line| line.trim().split_once(": ").map(|(_, f)| f))
                .find(|f| f.starts_with("scylla_shard::") && !f.contains("scylla_shard_fuzz"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "an unknown place".to_owned())
}

/// File name of a finding in the corpus: kind and a hash of the input.
pub fn corpus_name(finding: &Finding) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in &finding.input {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let kind = match finding.kind {
        FindingKind::Panic => "panic",
        FindingKind::Memory => "memory",
    };
    format!("{kind}-{hash:016x}.bin")
}

/// Writes a finding into the corpus directory; returns its path.
pub fn save(dir: &Path, finding: &Finding) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(corpus_name(finding));
    std::fs::write(&path, &finding.input)?;
    Ok(path)
}

/// Every input file of the corpus directory, sorted by name.
pub fn corpus(dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "bin") {
            let bytes = std::fs::read(&path)?;
            files.push((path, bytes));
        }
    }
    files.sort();
    Ok(files)
}
