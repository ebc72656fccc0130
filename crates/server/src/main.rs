use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tandem_server::config::{Cli, Config};
use tandem_server::{app, AppState};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("TANDEM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if cli.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let config = match Config::from_cli(&cli, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            eprintln!("tandem-server: {e}");
            return ExitCode::from(2);
        }
    };
    let state = match AppState::start(config).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(addr = %cli.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), data = %cli.data.display(), "tandem-server ready");
    // Small frames (ops, acks) must not wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app(state.clone())).with_graceful_shutdown({
        let state = state.clone();
        async move {
            shutdown_signal().await;
            info!("shutting down: finishing in-flight commits, closing sockets with 1001");
            state.begin_shutdown();
        }
    });
    if let Err(e) = server.await {
        error!(error = %e, "server error");
        return ExitCode::FAILURE;
    }
    if !state.wait_sessions_closed(Duration::from_secs(15)).await {
        error!(open = state.open_sessions(), "some sessions did not close in time");
    }
    info!("stopped");
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
