//! `osprey loadtest`: a load generator for any KServe v2 server (Osprey, Triton, KServe,
//! MLServer).
//!
//! [`args`] is the command line; [`inputs`] makes the tensors to send; [`target`] turns them into
//! requests for the chosen transport and sends them; [`driver`] runs closed-loop (fixed concurrency) and open-loop
//! (fixed or Poisson rate, latency measured from the intended send time) steps; [`record`] holds
//! what a step measured; [`server_stats`] reads the target's statistics extension around a step;
//! [`output`] writes JSON and CSV; [`report`] the HTML report (`osprey report` combines runs).

pub mod args;
pub mod driver;
pub mod inputs;
pub mod output;
pub mod record;
pub mod report;
pub mod server_stats;
pub mod target;

pub use args::LoadtestArgs;

use anyhow::Context;

/// Runs every step the arguments describe and writes the results.
pub async fn run(args: LoadtestArgs) -> anyhow::Result<Vec<record::StepResult>> {
    let target = target::Target::connect(&args).await.with_context(|| {
        format!(
            "cannot start: model '{}' at {} over {}",
            args.model,
            args.url,
            args.transport_name()
        )
    })?;
    let mut results = Vec::new();
    for step in args.steps()? {
        let before = server_stats::fetch(&args).await;
        let mut result = driver::run_step(&target, &step, &args).await;
        let after = server_stats::fetch(&args).await;
        let client_rows = result.ok * args.batch_size as u64;
        result.server = server_stats::delta(&before, &after, client_rows);
        if !args.quiet {
            eprintln!("{}", result.summary_line());
        }
        results.push(result);
    }
    output::write(&args, &results)?;
    print!("{}", report::text_table(&results));
    check_error_rate(&results, args.max_error_rate)?;
    Ok(results)
}

/// Fails when more than `max` of all measured requests failed, naming one message per kind.
pub fn check_error_rate(results: &[record::StepResult], max: f64) -> anyhow::Result<()> {
    let failed: u64 = results.iter().flat_map(|r| r.errors.values()).sum();
    let total: u64 = results.iter().map(|r| r.ok).sum::<u64>() + failed;
    if total == 0 {
        anyhow::bail!("no request was measured");
    }
    let rate = failed as f64 / total as f64;
    if rate > max {
        let mut samples = std::collections::BTreeMap::new();
        for r in results {
            for (k, m) in &r.error_samples {
                samples.entry(k.clone()).or_insert_with(|| m.clone());
            }
        }
        let samples: Vec<String> = samples.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        anyhow::bail!(
            "{failed} of {total} requests failed ({:.2}%, more than --max-error-rate {max}); {}",
            rate * 100.0,
            samples.join("; ")
        );
    }
    Ok(())
}
