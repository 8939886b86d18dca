use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use videoshare::app::App;
use videoshare::cli;
use videoshare::config::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().command;
    // Servers log at info; client commands only say what went wrong.
    let default_filter = match command {
        Command::Serve(_) | Command::Encoder(_) | Command::Portal(_) => {
            "videoshare=info,tower_http=warn"
        }
        _ => "videoshare=warn",
    };
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    match run(command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("videoshare: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let app = match command {
        Command::Serve(args) => App::build(&args).await?,
        Command::Encoder(args) => App::build_encoder(&args).await?,
        Command::Portal(args) => App::build_portal(&args).await?,
        Command::Submit(args) => return cli::submit(args).await,
        Command::Jobs(args) => return cli::jobs(args).await,
        Command::Job(args) => return cli::job(args).await,
        Command::Presets(args) => return cli::presets(args).await,
        Command::Nodes(args) => return cli::nodes(args).await,
        Command::Probe(args) => return cli::probe(args).await,
        Command::NodeToken(args) => return videoshare::app::node_token(&args).await,
        Command::RotateSessionKey(args) => {
            let dir = &args.data;
            let path = videoshare::portal::session::keys::rotate(dir)?;
            println!(
                "New session key in {}; the previous one still verifies cookies for \
                 --session-days. Restart the portal to sign with the new key.",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    app.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}

/// The error and its causes, skipping a cause the message already quotes
/// (many errors print their source in their own message).
fn describe(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}
