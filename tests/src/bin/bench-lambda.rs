//! Init benchmark (not a test): every function binary under our Lambda Runtime API emulator
//! (`mailroom_tests::lambda_emulator`) next to a hello-world `lambda_runtime` binary built by the
//! same profile. Per function: binary size (and deflated, ≈ its zip), init (exec → first
//! `invocation/next`), the first and the warm invocations, peak RSS (`VmHWM`). Rounds interleave
//! the functions so each sees the same machine load; medians are printed.
//!
//! Build the binaries first (`cargo build --release -p api -p oauth-start -p oauth-callback
//! -p send-mail -p sync-scheduler -p sync-worker -p mailroom-tests --bin bench-hello-lambda
//! --bin bench-lambda`), then: `target/release/bench-lambda [--store dynamodb|embedded]
//! [--rounds N] [--invocations N] [--bin-dir DIR]`. dynamodb (the default) needs moto
//! (`tests/servers/moto.sh start`, `MAILROOM_TEST_AWS_ENDPOINT`). `--store aws-init` measures
//! init as on AWS (no `AWS_ENDPOINT_URL`, so the SDK's client is the one built for AWS) with no
//! invocations: init makes no AWS call when the queue URL and key id are configured.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailroom_tests::lambda_emulator::functions::{backend_env, event};
use mailroom_tests::lambda_emulator::run::{Function, Measured, cold_start, median};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    store: String,
    rounds: usize,
    invocations: usize,
    bin_dir: PathBuf,
}

fn options() -> Result<Options, BoxError> {
    let mut o = Options {
        store: "dynamodb".into(),
        rounds: 7,
        invocations: 10,
        bin_dir: PathBuf::from("target/release"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--store" => o.store = value,
            "--rounds" => o.rounds = value.parse()?,
            "--invocations" => o.invocations = value.parse()?,
            "--bin-dir" => o.bin_dir = value.into(),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// Size of `path` deflated at gzip's default level: a zip of one file is within a few hundred
/// bytes of it.
fn deflated_size(path: &Path) -> Result<u64, BoxError> {
    let out = Command::new("gzip")
        .args(["-6", "-c"])
        .arg(path)
        .stderr(Stdio::null())
        .output()?;
    Ok(out.stdout.len() as u64)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut o = options()?;
    if o.store == "aws-init" {
        o.invocations = 0;
    }
    let names = [
        "bench-hello-lambda",
        "api",
        "oauth-start",
        "oauth-callback",
        "send-mail",
        "sync-scheduler",
        "sync-worker",
    ];
    let data = tempfile::tempdir()?;
    let env = backend_env(&o.store, data.path()).await?;
    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); names.len()];
    for round in 0..o.rounds {
        eprint!("round {}/{}…", round + 1, o.rounds);
        for (i, name) in names.iter().enumerate() {
            let binary = o.bin_dir.join(name);
            let log = data.path().join(format!("{name}.log"));
            let payload = serde_json::to_vec(&event(name))?;
            let events = vec![payload; o.invocations];
            let function = Function {
                name,
                binary: &binary,
                env: &env,
                log: &log,
            };
            match cold_start(&function, &events).await {
                Ok(m) => results[i].push(m),
                Err(e) => {
                    let logged = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!("{e}\n--- log ---\n{logged}").into());
                }
            }
        }
        eprintln!();
    }
    let hello_init = median(&results[0].iter().map(|m| ms(m.init)).collect::<Vec<_>>());
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "store: {}, {} rounds, {} invocations each; medians\n",
        o.store, o.rounds, o.invocations
    )?;
    writeln!(
        out,
        "| function | binary MB | deflated MB | init ms | init / hello | 1st invocation ms | warm invocation ms | peak RSS MB | answer |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for (name, runs) in names.iter().zip(&results) {
        let binary = o.bin_dir.join(name);
        let size = std::fs::metadata(&binary)?.len() as f64 / 1e6;
        let zipped = deflated_size(&binary)? as f64 / 1e6;
        let init = median(&runs.iter().map(|m| ms(m.init)).collect::<Vec<_>>());
        let first = median(
            &runs
                .iter()
                .filter_map(|m| m.invocations.first().map(|d| ms(*d)))
                .collect::<Vec<_>>(),
        );
        let warm: Vec<f64> = runs
            .iter()
            .flat_map(|m| m.invocations.iter().skip(1).map(|d| ms(*d)))
            .collect();
        let rss = median(
            &runs
                .iter()
                .map(|m| m.peak_rss_kb as f64 / 1024.0)
                .collect::<Vec<_>>(),
        );
        let inits: Vec<f64> = runs.iter().map(|m| ms(m.init)).collect();
        let (lo, hi) = inits
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        writeln!(
            out,
            "| {name} | {size:.1} | {zipped:.1} | {init:.1} ({lo:.1}–{hi:.1}) | {:.2}× | {first:.1} | {:.2} | {rss:.1} | {} |",
            init / hello_init,
            median(&warm),
            runs[0].first_answer
        )?;
    }
    Ok(())
}
