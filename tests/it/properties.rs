//! Property tests without extra dependencies: mutated experiment files never make the parser or
//! the resolver panic, and every error they report carries a position. The mutations are drawn
//! from a seeded generator, so a failure is reproducible from the printed case number.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use cohort::config;
use cohort::random::legacy::LegacyRandomState;

const PIECES: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "-",
    "0",
    "-1.0",
    "1e308",
    "NaN",
    "inf",
    "Some(",
    "None",
    "//",
    "/*",
    "\n",
    "peer1",
    "teacher",
    "CrossEntropy",
    "Mutual(peers: [])",
    "Edge(to: \"x\", loss: CrossEntropy)",
    "epochs: 0",
    "temperature: -0.0",
    "r#\"",
    "'",
    "\\",
    "é",
    "Stage(name: \"s\", train: [])",
    "frozen: true",
    "99999999999999999999",
];

fn mutate(src: &str, rng: &mut LegacyRandomState) -> String {
    let mut s: Vec<char> = src.chars().collect();
    for _ in 0..1 + rng.choice(4) {
        let at = if s.is_empty() { 0 } else { rng.choice(s.len()) };
        match rng.choice(5) {
            0 if !s.is_empty() => {
                let end = (at + 1 + rng.choice(12)).min(s.len());
                s.drain(at..end);
            }
            1 => {
                let piece: Vec<char> = PIECES[rng.choice(PIECES.len())].chars().collect();
                s.splice(at..at, piece);
            }
            2 if s.len() > 2 => {
                let b = rng.choice(s.len());
                s.swap(at, b);
            }
            3 if !s.is_empty() => {
                let end = (at + 1 + rng.choice(40)).min(s.len());
                let chunk: Vec<char> = s[at..end].to_vec();
                let to = rng.choice(s.len());
                s.splice(to..to, chunk);
            }
            _ => s.truncate(at),
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_experiment_files_never_panic_and_errors_have_positions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut sources: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    sources.sort();
    let cases: usize = std::env::var("COHORT_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let mut rng = LegacyRandomState::new(2026);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..cases {
        let src = mutate(&sources[case % sources.len()], &mut rng);
        let result = catch_unwind(AssertUnwindSafe(|| config::plan_from_str(&src, Path::new("fuzz.ron"))));
        match result {
            Err(_) => panic!("case {case} panicked on input:\n{src}"),
            Ok(Ok(_)) => valid += 1,
            Ok(Err(e)) => {
                invalid += 1;
                assert!(e.diagnostics.iter().all(|d| d.pos.is_some()), "case {case}: error without position:\n{e}\ninput:\n{src}");
                let _ = e.to_string(); // rendering must not panic either
            }
        }
    }
    eprintln!("property test: {cases} mutated files, {valid} still valid, {invalid} rejected with positions, 0 panics");
    assert!(invalid > cases / 2, "mutations too weak: only {invalid} of {cases} rejected");
}
