//! `p-chat-bench`: the reference server, one fan-out run, or a comparison of
//! p-chat with the reference at several rates (bench/README.md).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use p_chat_bench::reference::Reference;
use p_chat_bench::{BenchError, FanoutConfig, Report, Target, fanout};

/// p-chat's fan-out benchmark.
#[derive(Debug, Parser)]
#[command(name = "p-chat-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the reference broadcast WebSocket server until killed.
    Reference {
        /// Address to listen on (port 0 picks a free one, printed at start).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// One open-loop fan-out run against a target; prints one line.
    Fanout {
        /// The server measured.
        #[arg(long, value_enum)]
        target: Target,
        /// Its base URL.
        #[arg(long)]
        url: String,
        /// Messages per second offered, over all rooms.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[command(flatten)]
        shape: Shape,
    },
    /// Runs p-chat and the reference at each rate; prints the ratio table.
    Compare {
        /// p-chat's base URL.
        #[arg(long)]
        pchat_url: String,
        /// The reference's base URL.
        #[arg(long)]
        reference_url: String,
        /// Offered rates (messages/s), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
        rates: Vec<f64>,
        #[command(flatten)]
        shape: Shape,
    },
}

/// The parts of a run shared by `fanout` and `compare`.
#[derive(Debug, Args)]
struct Shape {
    /// Rooms, each with one sender.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Members (connections) per room, the sender included.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds a missing delivery is still waited for after the last send.
    #[arg(long, default_value_t = 5)]
    grace_seconds: u64,
}

impl Shape {
    fn config(&self, target: Target, url: &str, rate: f64) -> FanoutConfig {
        FanoutConfig {
            target,
            url: url.to_owned(),
            rooms: self.rooms,
            members: self.members,
            rate,
            duration: Duration::from_secs(self.seconds),
            grace: Duration::from_secs(self.grace_seconds),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::from)
        .and_then(|runtime| runtime.block_on(execute(cli.command)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing else reports a failed run: stderr is the report.
            let _ = writeln!(io::stderr(), "p-chat-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), BenchError> {
    let mut out = io::stdout();
    match command {
        Command::Reference { listen } => {
            let server = Reference::start(listen).await?;
            writeln!(out, "reference listening on http://{}", server.address())?;
            out.flush()?;
            server.run().await
        }
        Command::Fanout {
            target,
            url,
            rate,
            shape,
        } => {
            let report = fanout::run(&shape.config(target, &url, rate)).await?;
            writeln!(out, "{report}")?;
            Ok(())
        }
        Command::Compare {
            pchat_url,
            reference_url,
            rates,
            shape,
        } => {
            let mut pairs = Vec::with_capacity(rates.len());
            for rate in rates {
                let pchat = fanout::run(&shape.config(Target::PChat, &pchat_url, rate)).await?;
                writeln!(out, "{pchat}")?;
                let reference =
                    fanout::run(&shape.config(Target::Reference, &reference_url, rate)).await?;
                writeln!(out, "{reference}")?;
                pairs.push((pchat, reference));
            }
            write_ratios(&mut out, &pairs)?;
            Ok(())
        }
    }
}

/// The ratio table: p-chat / reference for deliveries/s and p99, per rate.
fn write_ratios(out: &mut impl Write, pairs: &[(Report, Report)]) -> io::Result<()> {
    writeln!(
        out,
        "\n{:>10} | {:>14} {:>14} {:>7} | {:>10} {:>10} {:>7} | {:>6}",
        "offered/s",
        "p-chat deliv/s",
        "ref deliv/s",
        "ratio",
        "p-chat p99",
        "ref p99",
        "ratio",
        "lost"
    )?;
    for (pchat, reference) in pairs {
        writeln!(
            out,
            "{:>10.0} | {:>14.0} {:>14.0} {:>7.2} | {:>8.1}ms {:>8.1}ms {:>7.2} | {:>6}",
            pchat.offered_rate,
            pchat.deliveries_per_second,
            reference.deliveries_per_second,
            ratio(pchat.deliveries_per_second, reference.deliveries_per_second),
            pchat.latency_ms(0.99),
            reference.latency_ms(0.99),
            ratio(pchat.latency_ms(0.99), reference.latency_ms(0.99)),
            pchat.lost + reference.lost,
        )?;
    }
    Ok(())
}

/// `a / b`, NaN when `b` is zero (a run that delivered nothing).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}
