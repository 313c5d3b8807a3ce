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
    let target = target::Target::connect(&args)
        .await
        .context("preparing the target")?;
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
    Ok(results)
}
